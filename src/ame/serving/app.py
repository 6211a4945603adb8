"""The ASGI application: every protocol on one port, written as raw ASGI.

A framework router costs more per request than the whole fast path of a small
model, so this app dispatches on (method, path) itself. It is still a plain
ASGI callable and runs under any ASGI server; ``ame serve`` uses uvicorn with
uvloop and httptools.

Routes: MLflow scoring (``/invocations``, ``/ping``, ``/health``, ``/version``),
the open inference protocol v2 (``/v2/...``) and ``/metrics``. When the model
was loaded through an alias, a background task polls the registry and swaps in
the new version once it is fully loaded: requests already parsed finish on the
version they were parsed for, new ones use the new version, none fails.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

import orjson

from ame.serving import codec, v2
from ame.serving.batching import Batcher, Job, ModelState
from ame.serving.codec import JSON, Reply
from ame.serving.metrics import Metrics
from ame.serving.options import DEFAULT_MAX_BODY_BYTES
from ame.serving.plans import plan_for
from ame.serving.sources import AliasWatcher, LoadedModel, deferred_checks

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SERVER_NAME = "ame"


@dataclass(frozen=True)
class AppConfig:
    """Behaviour of one worker's app (the server's CLI options)."""

    max_batch_size: int = 32
    max_latency_ms: float = 5.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    poll_interval: float = 5.0
    tracking_uri: Optional[str] = None
    # Log MLflow's requirement warnings for the model once serving (see
    # sources.deferred_checks); with several workers the supervisor does it.
    run_deferred_checks: bool = False
    # Payload logging (ame.monitoring.settings.LogSettings); None = off.
    payload_log: Optional[Any] = None
    # Serve v2 over gRPC too, on this port (see ame.serving.grpc_v2).
    grpc_port: Optional[int] = None
    grpc_host: str = "127.0.0.1"


class BodyTooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


def make_state(model: LoadedModel) -> ModelState:
    """Everything the hot path derives from a model, computed once per version."""
    try:
        schema = model.metadata.get_input_schema()
    except Exception:
        schema = None
    plan = plan_for(model.metadata)
    return ModelState(
        model=model,
        plan=plan,
        input_schema=schema,
        output_name=v2.output_name(model.metadata),
        fast_predict=codec.direct_predict(model.predictor, plan),
    )


class ServingApp:
    """The ASGI callable; one per worker process."""

    def __init__(
        self, model: LoadedModel, config: AppConfig, metrics: Optional[Metrics] = None
    ) -> None:
        self.config = config
        self.state = make_state(model)
        self.metrics = metrics or Metrics()
        self.metrics.serving(model.name, model.version)
        self.batcher = Batcher(config.max_batch_size, config.max_latency_ms, self.metrics)
        self.ready = False
        self._poller: Optional[asyncio.Task[None]] = None
        self._grpc: Any = None
        self.payloads: Any = None
        if config.payload_log is not None:
            from ame.monitoring.serving import attach

            self.payloads = attach(self)
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ame-loader")

    # --- lifecycle -----------------------------------------------------------

    async def startup(self) -> None:
        self.batcher.start()
        if self.payloads is not None:
            self.payloads.start()
        model = self.state.model
        loop = asyncio.get_running_loop()
        if model.follows and self.config.poll_interval > 0:
            self._poller = loop.create_task(self._follow(model.name, model.follows))
        if self.config.run_deferred_checks:
            loop.run_in_executor(self._loader, deferred_checks, model)
        if self.config.grpc_port:
            from ame.serving import grpc_v2

            self._grpc = await grpc_v2.start(
                self, self.config.grpc_host, self.config.grpc_port, self.config.max_body_bytes
            )
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        if self._poller is not None:
            self._poller.cancel()
        if self._grpc is not None:
            await self._grpc.stop(grace=5.0)
        await self.batcher.stop()
        if self.payloads is not None:
            self.payloads.close()
        self._loader.shutdown(wait=False, cancel_futures=True)

    async def _follow(self, name: str, alias: str) -> None:
        loop = asyncio.get_running_loop()
        watcher: Optional[AliasWatcher] = None
        first = True
        while True:
            if not first:
                await asyncio.sleep(self.config.poll_interval)
            first = False
            try:
                if watcher is None:
                    watcher = await loop.run_in_executor(
                        self._loader, AliasWatcher, name, alias, self.config.tracking_uri
                    )
                version = await loop.run_in_executor(self._loader, watcher.current_version)
                if version == self.state.model.version:
                    continue
                log.info("alias %s@%s moved to version %s; loading it", name, alias, version)
                model = await loop.run_in_executor(self._loader, watcher.load, version)
                new_state = await loop.run_in_executor(self._loader, make_state, model)
                self.state = new_state  # the swap: one reference assignment
                # The first model was frozen out of the collector at start-up
                # (see ame.serving.server); let its cycles be collected again.
                gc.unfreeze()
                self.metrics.serving(name, version)
                self.metrics.swaps.inc()
                log.info("now serving %s version %s", name, version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the registry may be down for a while: keep serving
                log.warning("could not follow %s@%s: %s", name, alias, exc)

    # --- ASGI ----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        route = "other"
        try:
            route, status, body, ctype = await self._dispatch(scope, receive)
        except Disconnected:
            return
        except Exception:
            log.exception("unhandled error")
            status, body, ctype = 500, b"Internal Server Error", codec.TEXT
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe(route, status, time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.config.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        raise BodyTooLarge()
                except ValueError:
                    pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self) -> Reply:
        return codec.error_json(
            413,
            f"request body exceeds the server's limit of {self.config.max_body_bytes} bytes "
            "(--max-body-bytes)",
        )

    async def _dispatch(self, scope: Scope, receive: Receive) -> tuple[str, int, bytes, bytes]:
        method: str = scope["method"]
        path: str = scope["path"]
        if path == "/invocations":
            if method != "POST":
                return path, 405, b'{"detail":"Method Not Allowed"}', JSON
            return (path, *await self._invocations(scope, receive))
        if path.startswith("/v2"):
            return await self._v2(method, path, scope, receive)
        if method != "GET":
            if path in ("/ping", "/health", "/version", "/metrics"):
                return path, 405, b'{"detail":"Method Not Allowed"}', JSON
            return "other", 404, b'{"detail":"Not Found"}', JSON
        if path in ("/ping", "/health"):
            return path, (200 if self.ready else 503), b"\n", JSON
        if path == "/version":
            from mlflow.version import VERSION

            return path, 200, VERSION.encode(), JSON
        if path == "/metrics":
            body, ctype = self.metrics.render()
            return path, 200, body, ctype.encode()
        return "other", 404, b'{"detail":"Not Found"}', JSON

    def _header(self, scope: Scope, name: bytes) -> Optional[str]:
        for key, value in scope["headers"]:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    async def _invocations(self, scope: Scope, receive: Receive) -> Reply:
        started = time.perf_counter()
        self.batcher.arriving += 1
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            return self._too_large()
        finally:
            self.batcher.arriving -= 1
        content_type = self._header(scope, b"content-type")
        state = self.state
        parsed = None
        if content_type is not None and content_type.split(";")[0].strip() == "application/json":
            doc, refused = codec.decode(body)
            if refused is not None:
                return codec.error_json(400, refused)
            if doc is not None and state.plan is not None and content_type in codec.FAST_TYPES:
                parsed = state.plan.parse(doc)

        def alone() -> Reply:
            return codec.mlflow_invocation(
                body, content_type, state.model.predictor, state.input_schema
            )

        job = Job(
            state=state,
            parsed=parsed,
            answer=lambda preds: (200, codec.predictions_json(preds), JSON),
            alone=alone,
        )
        reply = await self.batcher.submit(job)
        if self.payloads is not None:
            request_id = self._header(scope, b"x-request-id")
            self.payloads.offer("mlflow", state.model.version, request_id, body, content_type,
                                reply[0], reply[1], started)  # fmt: skip
        return reply

    # --- open inference protocol v2 ------------------------------------------

    async def _v2(
        self, method: str, path: str, scope: Scope, receive: Receive
    ) -> tuple[str, int, bytes, bytes]:
        parts = [p for p in path.split("/") if p]
        model = self.state.model
        if parts == ["v2"] and method == "GET":
            from ame import __version__

            meta = {"name": SERVER_NAME, "version": __version__, "extensions": []}
            return "/v2", 200, orjson.dumps(meta), JSON
        if parts == ["v2", "health", "live"] and method == "GET":
            return "/v2/health", 200, b'{"live":true}', JSON
        if parts == ["v2", "health", "ready"] and method == "GET":
            status = 200 if self.ready else 503
            return "/v2/health", status, orjson.dumps({"ready": self.ready}), JSON
        if len(parts) < 3 or parts[1] != "models":
            return "/v2", *v2.error(404, f"no such endpoint {path}")
        name, rest = parts[2], parts[3:]
        version: Optional[str] = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        if name != model.name:
            return "/v2/models", *v2.error(
                404, f"model '{name}' is not served here (serving '{model.name}')"
            )
        if version is not None and version != model.version:
            return "/v2/models", *v2.error(
                404,
                f"model '{name}' version {version} is not served here "
                f"(serving version {model.version})",
            )
        if rest == [] and method == "GET":
            return (
                "/v2/models",
                200,
                orjson.dumps(v2.model_metadata(model.name, model.version, model.metadata)),
                JSON,
            )
        if rest == ["ready"] and method == "GET":
            body = orjson.dumps({"name": model.name, "ready": self.ready})
            return "/v2/models/ready", (200 if self.ready else 503), body, JSON
        if rest == ["infer"] and method == "POST":
            return ("/v2/infer", *await self._v2_infer(scope, receive))
        return "/v2", *v2.error(404, f"no such endpoint {method} {path}")

    async def _v2_infer(self, scope: Scope, receive: Receive) -> Reply:
        started = time.perf_counter()
        self.batcher.arriving += 1
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            return v2.error(
                413,
                f"request body exceeds the server's limit of {self.config.max_body_bytes} bytes",
            )
        finally:
            self.batcher.arriving -= 1
        state = self.state
        try:
            doc = v2.parse_request(body)
            parsed = v2.prepare(state.plan, doc, state.input_schema)
        except v2.V2Error as exc:
            return v2.error(exc.status, str(exc))
        reply = await self.v2_submit(state, doc, parsed, v2.infer_response)
        if self.payloads is not None:
            request_id = self._header(scope, b"x-request-id")
            self.payloads.offer("v2", state.model.version, request_id, body, None, reply[0],
                                reply[1], started, state.output_name)  # fmt: skip
        return reply

    async def v2_submit(
        self,
        state: ModelState,
        doc: dict[str, Any],
        parsed: Optional[codec.Parsed],
        respond: Callable[[str, str, dict[str, Any], Any, str], Reply],
    ) -> Reply:
        """Queue one v2 inference (REST or gRPC); ``respond`` encodes the predictions."""
        model = state.model

        def answer(preds: Any) -> Reply:
            return respond(model.name, model.version, doc, preds, state.output_name)

        def alone() -> Reply:
            try:
                if parsed is not None:
                    assert state.plan is not None
                    data = state.plan.build([parsed.part])
                else:
                    data = v2.generic_input(doc)
                params = doc.get("parameters") if type(doc.get("parameters")) is dict else None
                preds = (
                    model.predictor.predict(data, params=params)
                    if params
                    else model.predictor.predict(data)
                )
            except v2.V2Error as exc:
                return v2.error(exc.status, str(exc))
            except Exception as exc:
                return v2.error(400, f"prediction failed: {getattr(exc, 'message', None) or exc}")
            return answer(preds)

        job = Job(
            state=state,
            parsed=parsed if "parameters" not in doc else None,
            answer=answer,
            alone=alone,
        )
        return await self.batcher.submit(job)


def build_app(
    model: LoadedModel, config: Optional[AppConfig] = None, metrics: Optional[Metrics] = None
) -> ServingApp:
    """The ASGI app serving ``model``; run it under any ASGI server."""
    return ServingApp(model, config or AppConfig(), metrics)
