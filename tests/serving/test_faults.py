"""Hostile and odd requests get a 4xx with a reason, never a 500 or a traceback in the log.

``mlflow models serve`` answers the first two with a bare 500 (RecursionError
in its JSON parser; ``None.split`` on the missing header); ame must not.
Also here: the metrics that count every predict call, the slow path's too.
"""

from __future__ import annotations

import re

import httpx
import pytest

from ame.serving import v2
from tests.serving.helpers import Server, Store, rows, split_body

pytestmark = pytest.mark.timeout(1200)

DEEP = b"[" * 50_000 + b"]" * 50_000  # within the test server's 200 kB body limit


def _no_traceback(server: Server) -> None:
    assert "Traceback" not in server.log_tail(200_000)


@pytest.mark.parametrize("depth", [50_000, 1010], ids=["past-orjson", "past-python-recursion"])
def test_deeply_nested_json_is_a_400_with_a_reason(
    lr_server: Server, store: Store, depth: int
) -> None:
    body = b'{"dataframe_split": ' + b"[" * depth + b"]" * depth + b"}"
    resp = httpx.post(
        lr_server.url + "/invocations", content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error_code"] == "BAD_REQUEST"
    assert "nested" in resp.json()["message"]
    infer = httpx.post(f"{lr_server.url}/v2/models/{store.lr}/infer", content=DEEP)
    assert infer.status_code == 400 and "nested deeper" in infer.json()["error"]
    _no_traceback(lr_server)


def test_post_without_content_type_is_a_415_with_a_reason(lr_server: Server) -> None:
    resp = httpx.post(
        lr_server.url + "/invocations", content=b'{"dataframe_split": {}}', headers={}
    )
    assert "content-type" not in resp.request.headers
    assert resp.status_code == 415
    assert "Got no Content-Type header" in resp.text and "application/json" in resp.text
    _no_traceback(lr_server)


def test_v2_refuses_unknown_names_even_without_a_fast_path_plan() -> None:
    from mlflow.types import ColSpec, Schema

    schema = Schema([ColSpec("double", "a", required=False), ColSpec("double", "b")])
    doc = {"inputs": [{"name": "zzz", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    with pytest.raises(v2.V2Error, match=r"unexpected inputs \['zzz'\]"):
        v2.prepare(None, doc, schema)
    doc["inputs"][0]["name"] = "b"
    assert v2.prepare(None, doc, schema) is None  # known: left to the model's own checks


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def test_batch_size_counts_slow_path_calls_and_queue_wait_is_measured(lr_server: Server) -> None:
    before = httpx.get(lr_server.url + "/metrics").text
    csv = "a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in rows(2)) + "\n"
    for _ in range(3):  # CSV: MLflow's own path, one request per predict call
        resp = httpx.post(
            lr_server.url + "/invocations", content=csv, headers={"content-type": "text/csv"}
        )
        assert resp.status_code == 200
    resp = httpx.post(lr_server.url + "/invocations", json=split_body(rows(1)))
    assert resp.status_code == 200
    after = httpx.get(lr_server.url + "/metrics").text
    for name in ("ame_batch_size_count", "ame_queue_wait_seconds_count"):
        assert _metric(after, name) - _metric(before, name) == 4, name
    assert (
        _metric(after, 'ame_batch_size_bucket\\{le="1.0"\\}')
        - _metric(before, 'ame_batch_size_bucket\\{le="1.0"\\}')
        == 4
    )
