"""The open inference protocol v2 over gRPC (``inference.GRPCInferenceService``).

The service stubs are the ones tritonclient ships (``tritonclient.grpc``), so
the messages are exactly those Triton and KServe clients send; no .proto is
kept here. The gRPC server runs on the worker's own event loop, beside the
HTTP server, and a ModelInfer request becomes the same ``Parsed`` part a REST
v2 request does (``ame.serving.v2``): the two protocols, and MLflow's
``/invocations``, share one batcher and one model.

Each worker listens on the gRPC port with ``SO_REUSEPORT`` (grpcio's default
on Linux), so with several workers the kernel spreads connections over them,
as it does for the HTTP socket they share.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import TYPE_CHECKING, Any, Optional

from ame.serving import v2
from ame.serving.codec import Reply

if TYPE_CHECKING:
    from ame.serving.app import ServingApp

log = logging.getLogger(__name__)

# v2 datatype -> (numpy dtype name, field of InferTensorContents)
_TYPES: dict[str, tuple[str, str]] = {
    "BOOL": ("bool", "bool_contents"),
    "INT8": ("int8", "int_contents"),
    "INT16": ("int16", "int_contents"),
    "INT32": ("int32", "int_contents"),
    "INT64": ("int64", "int64_contents"),
    "UINT8": ("uint8", "uint_contents"),
    "UINT16": ("uint16", "uint_contents"),
    "UINT32": ("uint32", "uint_contents"),
    "UINT64": ("uint64", "uint64_contents"),
    "FP16": ("float16", ""),
    "FP32": ("float32", "fp32_contents"),
    "FP64": ("float64", "fp64_contents"),
    "BYTES": ("object", "bytes_contents"),
}


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _bytes_elements(raw: bytes) -> list[bytes]:
    """Triton's raw BYTES layout: each element a 4-byte little-endian length, then its bytes."""
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise v2.V2Error("raw BYTES contents are truncated")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise v2.V2Error("raw BYTES contents are truncated")
        out.append(raw[pos : pos + n])
        pos += n
    return out


def _decode_bytes(items: list[bytes]) -> list[str]:
    try:
        return [b.decode("utf-8") for b in items]
    except UnicodeDecodeError as exc:
        raise v2.V2Error(f"BYTES element is not UTF-8: {exc}") from None


def _tensor_data(tensor: Any, raw: Optional[bytes]) -> Any:
    """One input's values, flat: an ndarray for numbers, a list of str for BYTES."""
    import numpy as np

    datatype = tensor.datatype
    if datatype not in _TYPES:
        raise v2.V2Error(f"input '{tensor.name}' has unknown datatype '{datatype}'")
    dtype, field = _TYPES[datatype]
    if raw is not None:
        if datatype == "BYTES":
            return _decode_bytes(_bytes_elements(raw))
        item = np.dtype(dtype).itemsize
        if len(raw) % item:
            raise v2.V2Error(
                f"input '{tensor.name}' has {len(raw)} raw bytes, not a whole number of {datatype}"
            )
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    if not field:
        raise v2.V2Error(f"input '{tensor.name}': {datatype} needs raw_input_contents")
    values = getattr(tensor.contents, field)
    if datatype == "BYTES":
        return _decode_bytes(list(values))
    return np.asarray(values, dtype=dtype)


def request_doc(request: Any) -> dict[str, Any]:
    """A ModelInferRequest as the v2 JSON request object (data flat), checked as REST checks it."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise v2.V2Error(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs"
        )
    inputs = []
    for i, tensor in enumerate(request.inputs):
        shape = [int(d) for d in tensor.shape]
        data = _tensor_data(tensor, raw[i] if raw else None)
        if len(data) != _size(shape):
            raise v2.V2Error(f"input '{tensor.name}' has {len(data)} values but shape {shape}")
        inputs.append(
            {"name": tensor.name, "datatype": tensor.datatype, "shape": shape, "data": data}
        )
    doc: dict[str, Any] = {"inputs": inputs}
    if request.id:
        doc["id"] = request.id
    if request.outputs:
        doc["outputs"] = [{"name": o.name} for o in request.outputs]
    params = {
        k: getattr(p, p.WhichOneof("parameter_choice")) for k, p in request.parameters.items()
    }
    if params:
        doc["parameters"] = params
    return v2.check_request(doc)


def _raw(arr: Any) -> tuple[str, bytes]:
    """``(datatype, raw bytes)`` of an output array, as Triton lays them out."""
    import numpy as np

    if arr.dtype.kind in "OUS":
        parts = []
        for v in arr.reshape(-1).tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(b)) + b)
        return "BYTES", b"".join(parts)
    datatype = v2._numpy_v2(arr.dtype)
    return datatype, np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def infer_response(name: str, version: str, doc: dict[str, Any], preds: Any, output: str) -> Any:
    """A ModelInferResponse carrying the predictions as raw output contents."""
    from tritonclient.grpc import service_pb2

    response = service_pb2.ModelInferResponse(model_name=name, model_version=version)
    if "id" in doc:
        response.id = str(doc["id"])
    wanted = {o["name"] for o in doc.get("outputs", [])}
    for out_name, arr in v2.output_arrays(preds, output):
        if wanted and out_name not in wanted:
            continue
        datatype, raw = _raw(arr)
        response.outputs.add(name=out_name, datatype=datatype, shape=list(arr.shape))
        response.raw_output_contents.append(raw)
    return response


def _code(status: int) -> Any:
    import grpc

    return {
        400: grpc.StatusCode.INVALID_ARGUMENT,
        404: grpc.StatusCode.NOT_FOUND,
        413: grpc.StatusCode.RESOURCE_EXHAUSTED,
        503: grpc.StatusCode.UNAVAILABLE,
    }.get(status, grpc.StatusCode.INTERNAL)


def _message(reply: Reply) -> str:
    import orjson

    try:
        return str(orjson.loads(reply[1])["error"])
    except Exception:
        return reply[1].decode("utf-8", "replace")


def make_servicer(app: ServingApp) -> Any:
    """The GRPCInferenceService servicer answering for ``app``'s model."""
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
        async def ServerLive(self, request: Any, context: Any) -> Any:
            return service_pb2.ServerLiveResponse(live=True)

        async def ServerReady(self, request: Any, context: Any) -> Any:
            return service_pb2.ServerReadyResponse(ready=app.ready)

        async def ServerMetadata(self, request: Any, context: Any) -> Any:
            from ame import __version__

            return service_pb2.ServerMetadataResponse(name="ame", version=__version__)

        async def _check(self, name: str, version: str, context: Any) -> Any:
            model = app.state.model
            if name != model.name:
                await context.abort(
                    _code(404), f"model '{name}' is not served here (serving '{model.name}')"
                )
            if version and version != model.version:
                await context.abort(
                    _code(404),
                    f"model '{name}' version {version} is not served here "
                    f"(serving version {model.version})",
                )
            return model

        async def ModelReady(self, request: Any, context: Any) -> Any:
            await self._check(request.name, request.version, context)
            return service_pb2.ModelReadyResponse(ready=app.ready)

        async def ModelMetadata(self, request: Any, context: Any) -> Any:
            model = await self._check(request.name, request.version, context)
            meta = v2.model_metadata(model.name, model.version, model.metadata)
            response = service_pb2.ModelMetadataResponse(
                name=meta["name"], versions=meta["versions"], platform=meta["platform"]
            )
            for key in ("inputs", "outputs"):
                for t in meta[key]:
                    getattr(response, key).add(
                        name=t["name"], datatype=t["datatype"], shape=t["shape"]
                    )
            return response

        async def ModelInfer(self, request: Any, context: Any) -> Any:
            started = time.perf_counter()
            state = app.state
            await self._check(request.model_name, request.model_version, context)
            try:
                doc = request_doc(request)
                parsed = v2.prepare(state.plan, doc, state.input_schema)
            except v2.V2Error as exc:
                await context.abort(_code(exc.status), str(exc))
            made: dict[str, Any] = {}

            def respond(name: str, version: str, d: dict[str, Any], preds: Any, out: str) -> Reply:
                made["response"] = infer_response(name, version, d, preds, out)
                return 200, b"", b"application/grpc"

            reply = await app.v2_submit(state, doc, parsed, respond)
            app.metrics.observe("grpc/ModelInfer", reply[0], time.perf_counter() - started)
            if app.payloads is not None and reply[0] == 200:
                app.payloads.offer("grpc", state.model.version, request.id or None, doc, None,
                                   200, made["response"], started, state.output_name)  # fmt: skip
            if reply[0] != 200:
                await context.abort(_code(reply[0]), _message(reply))
            return made["response"]

    return Servicer()


async def start(app: ServingApp, host: str, port: int, max_message_bytes: int) -> Any:
    """Start the gRPC server on the running loop; ServingError if the port cannot be had."""
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    from ame.errors import ServingError

    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(make_servicer(app), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ServingError(f"cannot listen for gRPC on {address}: {exc}") from None
    if not bound:
        raise ServingError(f"cannot listen for gRPC on {address}")
    await server.start()
    log.info("serving the v2 gRPC protocol on %s", address)
    return server
