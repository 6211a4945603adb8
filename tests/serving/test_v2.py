"""The open inference protocol v2: health, metadata, typed-tensor inference and its errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.serving.helpers import FEATURES, Server, Store, rows

pytestmark = pytest.mark.timeout(1200)


def _infer_body(data: list[list[float]], datatype: str = "FP64") -> dict[str, Any]:
    return {
        "id": "req-1",
        "inputs": [
            {"name": f, "shape": [len(data)], "datatype": datatype, "data": [r[i] for r in data]}
            for i, f in enumerate(FEATURES)
        ],
    }


def test_health_and_server_metadata(lr_server: Server) -> None:
    assert httpx.get(lr_server.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(lr_server.url + "/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(lr_server.url + "/v2").json()
    assert meta["name"] == "ame" and "version" in meta and meta["extensions"] == []


def test_model_metadata_and_ready(lr_server: Server, store: Store) -> None:
    for path in (f"/v2/models/{store.lr}", f"/v2/models/{store.lr}/versions/1"):
        meta = httpx.get(lr_server.url + path).json()
        assert meta["name"] == store.lr
        assert meta["versions"] == ["1"]
        assert meta["inputs"] == [{"name": f, "datatype": "FP64", "shape": [-1]} for f in FEATURES]
        assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
    for path in (f"/v2/models/{store.lr}/ready", f"/v2/models/{store.lr}/versions/1/ready"):
        ready = httpx.get(lr_server.url + path)
        assert ready.status_code == 200 and ready.json() == {"name": store.lr, "ready": True}
    stale = httpx.get(f"{lr_server.url}/v2/models/{store.lr}/versions/2/ready")
    assert stale.status_code == 404 and "serving version 1" in stale.json()["error"]


def test_infer_matches_model(lr_server: Server, store: Store, lr_model: Any) -> None:
    import pandas as pd

    data = rows(5, seed=3)
    expected = lr_model.predict(pd.DataFrame(data, columns=FEATURES)).tolist()
    for path in (f"/v2/models/{store.lr}/infer", f"/v2/models/{store.lr}/versions/1/infer"):
        resp = httpx.post(lr_server.url + path, json=_infer_body(data))
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert (
            doc["model_name"] == store.lr and doc["model_version"] == "1" and doc["id"] == "req-1"
        )
        assert doc["outputs"] == [
            {"name": "predict", "datatype": "INT64", "shape": [5], "data": expected}
        ]


def test_infer_accepts_nested_column_tensors(lr_server: Server, store: Store) -> None:
    body = _infer_body([[1.0, 2.0, 3.0, 4.0]])
    for tensor in body["inputs"]:
        tensor["shape"] = [1, 1]
        tensor["data"] = [tensor["data"]]
    resp = httpx.post(f"{lr_server.url}/v2/models/{store.lr}/infer", json=body)
    assert resp.status_code == 200 and resp.json()["outputs"][0]["shape"] == [1]


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (lambda b: b["inputs"].pop(), 400, "missing inputs ['d']"),
        (lambda b: b["inputs"][0].update(name="zzz"), 400, "unexpected inputs ['zzz']"),
        (
            lambda b: b["inputs"][0].update(datatype="BYTES"),
            400,
            "datatype BYTES but the model expects FP64",
        ),
        (lambda b: b["inputs"][0].update(datatype="FP99"), 400, "unknown datatype"),
        (lambda b: b["inputs"][0].update(shape=[3]), 400, "has 2 values but shape [3]"),
        (lambda b: b["inputs"][0].update(data=["x", "y"]), 400, "not of datatype FP64"),
        (lambda b: b.pop("inputs"), 400, "'inputs' array"),
    ],
    ids=[
        "missing",
        "unexpected",
        "wrong-datatype",
        "unknown-datatype",
        "bad-shape",
        "bad-values",
        "no-inputs",
    ],
)
def test_infer_errors_name_the_reason(
    lr_server: Server, store: Store, mutate: Any, status: int, reason: str
) -> None:
    body = _infer_body(rows(2))
    mutate(body)
    resp = httpx.post(f"{lr_server.url}/v2/models/{store.lr}/infer", json=body)
    assert resp.status_code == status
    assert reason in resp.json()["error"]


def test_infer_malformed_json_and_unknown_model(lr_server: Server, store: Store) -> None:
    bad = httpx.post(f"{lr_server.url}/v2/models/{store.lr}/infer", content=b"{nope")
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    missing = httpx.post(f"{lr_server.url}/v2/models/other/infer", json=_infer_body(rows(1)))
    assert missing.status_code == 404 and "not served here" in missing.json()["error"]
    wrong_version = httpx.get(f"{lr_server.url}/v2/models/{store.lr}/versions/7")
    assert wrong_version.status_code == 404 and "version 7" in wrong_version.json()["error"]


def test_pyfunc_model_over_v2_with_parameters(pyf_server: Server, store: Store) -> None:
    body = {
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
            {"name": "n", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        ],
        "parameters": {"scale": 10.0},
    }
    resp = httpx.post(f"{pyf_server.url}/v2/models/{store.pyf}/infer", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"][0]["data"] == [11.0, 22.0]
