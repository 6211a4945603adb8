"""v2 over gRPC, tested with Triton's own client (tritonclient[grpc]) against real servers.

Two servers: the session's ``ame serve`` of the column model ``lr`` (2 workers
sharing the gRPC port), and, in this process, ame's app for a scikit-learn
model logged from a NumPy input example (a tensor signature), with its REST
twin: the same request must get the same predictions over both protocols.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from ame.serving.app import AppConfig, build_app
from ame.serving.sources import LoadedModel
from tests.helpers import free_port
from tests.serving.helpers import FEATURES, Server, Store, ThreadServer, rows

pytestmark = pytest.mark.timeout(1200)

X = np.asarray(rows(5, seed=11))


def _client(port: int) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")


def _column_inputs(data: np.ndarray) -> list[grpcclient.InferInput]:
    inputs = []
    for i, name in enumerate(FEATURES):
        tensor = grpcclient.InferInput(name, [len(data)], "FP64")
        tensor.set_data_from_numpy(np.ascontiguousarray(data[:, i]))  # raw_input_contents
        inputs.append(tensor)
    return inputs


def test_health_and_metadata(lr_server: Server, store: Store) -> None:
    assert lr_server.grpc_port is not None
    client = _client(lr_server.grpc_port)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(store.lr) and client.is_model_ready(store.lr, "1")
    meta = client.get_model_metadata(store.lr, as_json=True)
    assert meta["name"] == store.lr and meta["versions"] == ["1"]
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [(f, "FP64") for f in FEATURES]
    with pytest.raises(InferenceServerException) as err:
        client.get_model_metadata("other")
    assert "NOT_FOUND" in str(err.value.status()) and "not served here" in err.value.message()


def test_infer_raw_contents_matches_the_model(
    lr_server: Server, store: Store, lr_model: Any
) -> None:
    import pandas as pd

    assert lr_server.grpc_port is not None
    expected = lr_model.predict(pd.DataFrame(X, columns=FEATURES))
    client = _client(lr_server.grpc_port)
    # several calls: with two workers on one port, both answer some
    for _ in range(4):
        result = client.infer(store.lr, _column_inputs(X), request_id="r1")
        assert result.as_numpy("predict").tolist() == expected.tolist()
        assert result.get_response().id == "r1"


def test_infer_typed_contents(lr_server: Server, store: Store, lr_model: Any) -> None:
    import grpc
    import pandas as pd

    assert lr_server.grpc_port is not None
    request = service_pb2.ModelInferRequest(model_name=store.lr)
    for i, name in enumerate(FEATURES):
        tensor = request.inputs.add(name=name, datatype="FP64", shape=[len(X)])
        tensor.contents.fp64_contents.extend(X[:, i].tolist())
    with grpc.insecure_channel(f"127.0.0.1:{lr_server.grpc_port}") as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    out = np.frombuffer(response.raw_output_contents[0], dtype="<i8")
    expected = lr_model.predict(pd.DataFrame(X, columns=FEATURES))
    assert response.outputs[0].name == "predict" and list(response.outputs[0].shape) == [5]
    assert out.tolist() == expected.tolist()


def test_infer_errors_are_invalid_argument(lr_server: Server, store: Store) -> None:
    assert lr_server.grpc_port is not None
    client = _client(lr_server.grpc_port)
    inputs = _column_inputs(X)
    inputs[0] = grpcclient.InferInput("zzz", [len(X)], "FP64")
    inputs[0].set_data_from_numpy(np.ascontiguousarray(X[:, 0]))
    with pytest.raises(InferenceServerException) as err:
        client.infer(store.lr, inputs)
    assert "INVALID_ARGUMENT" in str(err.value.status())
    assert "unexpected inputs ['zzz']" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        client.infer("other", _column_inputs(X))
    assert "NOT_FOUND" in str(err.value.status())


@pytest.fixture(scope="module")
def tensor_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ThreadServer, int, Any]]:
    """ame's app for a NumPy-logged scikit-learn model, REST and gRPC, in this process."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    train = rng.normal(size=(100, 4))
    path = Path(tmp_path_factory.mktemp("tensor")) / "model"
    model = LogisticRegression().fit(train, (train[:, 0] > 0).astype(int))
    mlflow.sklearn.save_model(
        model, str(path), input_example=train[:2], pip_requirements=["mlflow"]
    )
    loaded = mlflow.pyfunc.load_model(str(path))
    port = free_port()
    app = build_app(
        LoadedModel(predictor=loaded, name="tens", version="1", source=str(path)),
        AppConfig(grpc_port=port),
    )
    server = ThreadServer(app).start()
    yield server, port, loaded
    server.stop()


def test_tensor_model_over_grpc_and_rest_agree(
    tensor_server: tuple[ThreadServer, int, Any],
) -> None:
    server, port, model = tensor_server
    expected = model.predict(X).tolist()
    tensor = grpcclient.InferInput("input", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X)
    result = _client(port).infer("tens", [tensor])
    assert result.as_numpy("predict").tolist() == expected
    body = {
        "inputs": [
            {"name": "input", "shape": list(X.shape), "datatype": "FP64", "data": X.tolist()}
        ]
    }
    rest = httpx.post(f"{server.url}/v2/models/tens/infer", json=body)
    assert rest.status_code == 200, rest.text
    assert rest.json()["outputs"][0]["data"] == expected
    meta = _client(port).get_model_metadata("tens", as_json=True)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": ["-1", "4"]}]


@pytest.mark.parametrize(
    ("tensor", "reason"),
    [
        (
            {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]},
            "unexpected inputs ['x']",
        ),
        (
            {"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]},
            "expects [-1, 4]",
        ),
        (
            {"name": "input", "shape": [1, 4], "datatype": "BYTES", "data": ["a"] * 4},
            "datatype BYTES",
        ),
        ({"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3]}, "3 values"),
    ],
    ids=["unknown-name", "shape", "datatype", "count"],
)
def test_tensor_model_v2_errors(
    tensor_server: tuple[ThreadServer, int, Any], tensor: dict[str, Any], reason: str
) -> None:
    server, port, _ = tensor_server
    resp = httpx.post(f"{server.url}/v2/models/tens/infer", json={"inputs": [tensor]})
    assert resp.status_code == 400 and reason in resp.json()["error"]
    if tensor["datatype"] == "FP64" and len(tensor["data"]) == np.prod(tensor["shape"]):
        grpc_tensor = grpcclient.InferInput(tensor["name"], tensor["shape"], "FP64")
        grpc_tensor.set_data_from_numpy(
            np.asarray(tensor["data"], dtype="float64").reshape(tensor["shape"])
        )
        with pytest.raises(InferenceServerException) as err:
            _client(port).infer("tens", [grpc_tensor])
        assert "INVALID_ARGUMENT" in str(err.value.status()) and reason in err.value.message()


def test_grpc_port_in_use_is_a_one_line_error(store: Store, tmp_path: Path) -> None:
    import socket
    import subprocess

    from tests.serving.helpers import AME

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        proc = subprocess.run(
            [
                AME,
                "serve",
                f"models:/{store.lr}/1",
                "--port",
                str(free_port()),
                "--grpc-port",
                str(taken),
            ],
            capture_output=True,
            text=True,
            cwd=store.root,
            env=store.env(),
            timeout=300,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"error: cannot listen for gRPC on 127.0.0.1:{taken}" in proc.stderr
    assert "Traceback" not in proc.stderr
