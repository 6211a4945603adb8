"""The MLflow scoring protocol answers exactly as ``mlflow models serve`` does.

One real ``mlflow models serve --env-manager local`` and one ``ame serve`` run on
the same registered version; every body of the table goes to both and the
answers must match: status, content type, predictions, error code and message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.serving.helpers import FEATURES, Server, Store, rows, split_body, start_mlflow

# Starting real servers on a shared 2-core machine can take minutes.
pytestmark = pytest.mark.timeout(1200)

J = "application/json"
R = rows(3)
CSV = "a,b,c,d\n" + "\n".join(",".join(str(v) for v in r) for r in R) + "\n"

CASES: list[tuple[str, str, Any]] = [
    ("split", J, split_body(R)),
    ("split-int-values", J, split_body([[1, 2, 3, 4], [0, -1, 2, 5]])),
    ("split-reordered", J, {"dataframe_split": {"columns": ["d", "c", "b", "a"], "data": R}}),
    (
        "split-with-index",
        J,
        {"dataframe_split": {"columns": FEATURES, "data": R, "index": [7, 8, 9]}},
    ),
    ("split-no-columns", J, {"dataframe_split": {"data": R}}),
    ("split-data-not-list", J, {"dataframe_split": {"columns": FEATURES, "data": "x"}}),
    ("split-ragged", J, {"dataframe_split": {"columns": FEATURES, "data": [[1, 2, 3]]}}),
    ("split-empty", J, {"dataframe_split": {"columns": FEATURES, "data": []}}),
    ("records", J, {"dataframe_records": [dict(zip(FEATURES, r, strict=True)) for r in R]}),
    ("records-missing-column", J, {"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3.0}]}),
    ("records-extra-column", J, {"dataframe_records": [{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}]}),
    ("records-string-value", J, {"dataframe_records": [{"a": "x", "b": 2.0, "c": 3.0, "d": 4.0}]}),
    ("records-null", J, {"dataframe_records": [{"a": None, "b": 2.0, "c": 3.0, "d": 4.0}]}),
    ("records-bool", J, {"dataframe_records": [{"a": True, "b": 2.0, "c": 3.0, "d": 4.0}]}),
    ("records-rows-not-dicts", J, {"dataframe_records": [[1, 2, 3, 4]]}),
    ("records-huge-int", J, {"dataframe_records": [{"a": 10**30, "b": 2, "c": 3, "d": 4}]}),
    ("instances", J, {"instances": [dict(zip(FEATURES, r, strict=True)) for r in R]}),
    ("inputs", J, {"inputs": {f: [r[i] for r in R] for i, f in enumerate(FEATURES)}}),
    ("with-params", J, {**split_body(R), "params": {"unknown": 1}}),
    ("extra-top-level-key", J, {**split_body(R), "foo": 1}),
    ("no-format-key", J, {"foo": 1}),
    ("two-format-keys", J, {**split_body(R), "dataframe_records": []}),
    ("list-root", J, [1, 2, 3]),
    ("malformed-json", J, b'{"dataframe_split": {"columns": ["a"'),
    ("empty-body", J, b""),
    ("not-utf8", J, b"\xff\xfe\x00"),
    ("csv", "text/csv", CSV),
    ("csv-missing-column", "text/csv", "a,b,c\n1,2,3\n"),
    ("text-plain", "text/plain", json.dumps(split_body(R))),
    ("latin1-charset", "application/json; charset=latin-1", json.dumps(split_body(R))),
    ("unknown-parameter", "application/json; format=pandas-split", json.dumps(split_body(R))),
]


@pytest.fixture(scope="module")
def mlflow_server(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_mlflow(store, f"models:/{store.lr}/1", tmp_path_factory.mktemp("mlflow-ref"))
    yield server
    server.stop()


def _post(url: str, ctype: str, body: Any) -> httpx.Response:
    if isinstance(body, (dict, list)):
        content = json.dumps(body).encode()
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = body
    return httpx.post(
        url + "/invocations", content=content, headers={"content-type": ctype}, timeout=30
    )


_SET_REPR = re.compile(r"\{('[^'{}]*'(?:, '[^'{}]*')*)\}")


def _normalise(message: str) -> str:
    # MLflow prints Python sets in some messages; their order changes with each
    # process's hash seed (two mlflow servers differ too), so compare them sorted.
    return _SET_REPR.sub(lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


def _comparable(resp: httpx.Response) -> tuple[int, str, Any]:
    ctype = resp.headers.get("content-type", "").split(";")[0]
    if ctype == "application/json":
        try:
            doc = json.loads(resp.text)
        except ValueError:
            return resp.status_code, ctype, resp.text
        if isinstance(doc, dict):
            doc.pop("stack_trace", None)  # tracebacks name each server's own frames
            if isinstance(doc.get("message"), str):
                doc["message"] = _normalise(doc["message"])
        return resp.status_code, ctype, doc
    return resp.status_code, ctype, resp.text


@pytest.mark.parametrize(("case", "ctype", "body"), CASES, ids=[c[0] for c in CASES])
def test_invocations_match_mlflow(
    case: str, ctype: str, body: Any, lr_server: Server, mlflow_server: Server
) -> None:
    ours_resp = _post(lr_server.url, ctype, body)
    theirs_resp = _post(mlflow_server.url, ctype, body)
    assert _comparable(ours_resp) == _comparable(theirs_resp), case
    if theirs_resp.status_code == 200:  # predictions: the very same bytes
        assert ours_resp.content == theirs_resp.content, case


def test_valid_bodies_predict_what_the_model_predicts(lr_server: Server, lr_model: Any) -> None:
    import pandas as pd

    expected = lr_model.predict(pd.DataFrame(R, columns=FEATURES)).tolist()
    for body in (
        split_body(R),
        {"dataframe_records": [dict(zip(FEATURES, r, strict=True)) for r in R]},
    ):
        resp = _post(lr_server.url, J, body)
        assert resp.status_code == 200
        assert resp.json() == {"predictions": expected}


@pytest.mark.parametrize("path", ["/ping", "/health", "/version"])
def test_health_and_version_match_mlflow(
    path: str, lr_server: Server, mlflow_server: Server
) -> None:
    ours = httpx.get(lr_server.url + path, timeout=10)
    theirs = httpx.get(mlflow_server.url + path, timeout=10)
    assert (ours.status_code, ours.text) == (theirs.status_code, theirs.text)
    assert ours.status_code == 200


def test_unknown_route_and_wrong_method_match_mlflow(
    lr_server: Server, mlflow_server: Server
) -> None:
    for method, path in (("GET", "/nope"), ("GET", "/invocations")):
        ours = httpx.request(method, lr_server.url + path, timeout=10)
        theirs = httpx.request(method, mlflow_server.url + path, timeout=10)
        assert ours.status_code == theirs.status_code
        assert ours.json() == theirs.json()
