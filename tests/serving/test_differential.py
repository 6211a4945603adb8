"""Differential test: ame's answers are MLflow's, for every model kind and a corpus of bodies.

Each model of ``model_kinds`` is loaded once and served twice on 127.0.0.1:
by MLflow's own scoring app (``mlflow.pyfunc.scoring_server.init``, the app
``mlflow models serve`` runs under uvicorn) and by ame's app. Every body goes
to both; a 200 must be byte-identical, an error must have MLflow's status,
content type and message. The bodies go to ame all at once, so they are
merged into shared predict calls, and one by one to MLflow.

The test also checks that the fast path really took the bodies it is meant
to take (else agreement would prove nothing about it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ame.serving.app import AppConfig, build_app
from ame.serving.codec import FAST_TYPES, decode
from ame.serving.plans import plan_for
from ame.serving.sources import LoadedModel
from tests.serving import model_kinds
from tests.serving.helpers import ThreadServer
from tests.serving.test_scoring import _comparable

pytestmark = pytest.mark.timeout(600)

R = [[0.5, -1.0, 2.0, 0.25], [1.5, 2.0, -0.5, 1.0], [-2.0, 0.0, 1.0, 3.0]]
INTS = [[1, 2, 3, 4], [0, -1, 2, 5]]
F = model_kinds.FEATURES


def _split(data: Any, columns: Any = F, **extra: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": columns, "data": data, **extra}}


def _records(rows: list[list[Any]], columns: list[str] = F) -> dict[str, Any]:
    return {"dataframe_records": [dict(zip(columns, r, strict=True)) for r in rows]}


# (body, fast): ``fast`` says the fast path must take it.
COMMON: list[tuple[Any, bool]] = [
    ({"foo": 1}, False),
    ([1, 2, 3], False),
    (b'{"inputs": [[1, 2', False),
    ({**_split(R), "params": {"k": 1}}, False),
    ({**_split(R), "foo": 1}, False),
]
CORPUS: dict[str, list[tuple[Any, bool]]] = {
    "sklearn-columns": [
        (_split(R), True),
        (_split(INTS), True),
        (_split(R, index=[7, 8, 9]), True),
        (_split(R, index=["x", "y", "z"]), True),
        (_split(R, index=[1, 2]), False),
        (_split(R[:1], columns=["d", "c", "b", "a"]), True),
        (_records(R), True),
        (_records([[True, 1.0, 2.0, 3.0]]), False),
        (_records([[None, 1.0, 2.0, 3.0]]), False),
        ({"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3.0}]}, False),
        (_split([]), False),
        ({"inputs": {f: [r[i] for r in R] for i, f in enumerate(F)}}, False),
        ({"instances": [dict(zip(F, r, strict=True)) for r in R]}, False),
    ],
    "sklearn-tensor": [
        ({"inputs": R}, True),
        ({"instances": R}, True),
        ({"inputs": INTS}, True),
        ({"inputs": R[:1]}, True),
        ({"inputs": [[1, "2.5", 3, 4]]}, True),  # numpy converts it, as in MLflow
        ({"inputs": [[1, 2, None, 4]]}, True),
        ({"inputs": [[True, 2.0, 3.0, 4.0]]}, True),
        ({"inputs": [1.0, 2.0, 3.0, 4.0]}, False),  # wrong rank
        ({"inputs": [[1.0, 2.0, 3.0]]}, False),  # wrong width
        ({"inputs": [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0]]}, False),  # ragged
        ({"inputs": [["x", 2.0, 3.0, 4.0]]}, False),
        ({"inputs": []}, False),
        ({"inputs": {"a": [1.0]}}, False),
        ({"instances": [dict(zip(F, r, strict=True)) for r in R]}, False),
        (_split(R), False),
        (_records(R), False),
    ],
    "sklearn-no-signature": [
        (_split(R), True),
        (_split(INTS), True),
        (_split(R, index=[3, 4, 5]), True),
        (_records(R), True),
        (_records(INTS), True),
        ({"inputs": R}, True),
        ({"instances": INTS}, True),
        (_split([[1, 2.5, 3, 4]]), True),  # ints and floats in one row, float64 columns
        (
            _split([[1, 2, 3]], columns=["a", "b", "c"]),
            True,
        ),  # the model fails: MLflow's error, each alone
        ({"inputs": [[1.0, 2.0], [1.0]]}, False),  # ragged
        (_records([[None, 1.0, 2.0, 3.0]]), False),
        (_split(R, columns=None), False),
    ],
    "pyfunc-frame": [
        (
            _split([["x", 1, 0.5, True], ["y", 2, 1.5, False]], columns=["s", "n", "x", "flag"]),
            True,
        ),
        (_records([["z", 3, 2, True]], columns=["s", "n", "x", "flag"]), True),
        (_records([["z", 3.5, 2.0, True]], columns=["s", "n", "x", "flag"]), False),
        (_records([["z", True, 2.0, True]], columns=["s", "n", "x", "flag"]), False),
        (_records([[1, 3, 2.0, True]], columns=["s", "n", "x", "flag"]), False),
        (_records([["z", 3, 2.0, 1]], columns=["s", "n", "x", "flag"]), False),
        ({"dataframe_records": [{"s": "z", "n": 3, "x": 2.0}]}, False),
    ],
    "pyfunc-dict": [
        (_split(R), True),
        (_split([["a", "b"]], columns=["p", "q"]), True),
        (_records(INTS), True),
        ({"inputs": R}, True),
    ],
    "pyfunc-list": [
        (_split(R), True),
        (_split([[1, "k"], [2, "l"]], columns=["n", "s"]), True),
        (_records(INTS), True),
        ({"inputs": INTS}, True),
        (_split([[True, 1.5]], columns=["b", "x"]), True),
    ],
    "pyfunc-named-tensors": [
        ({"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]], "y": [1, 2]}}, True),
        ({"inputs": {"y": [5], "x": [[0.5, 0.5]]}}, True),
        ({"instances": [{"x": [1.0, 2.0], "y": 3}, {"x": [0.0, 1.0], "y": 4}]}, True),
        ({"inputs": {"x": [[1.0, 2.0]]}}, False),  # missing y
        ({"inputs": {"x": [[1.0, 2.0]], "y": [1], "z": [1]}}, False),
        ({"inputs": {"x": [[1.0, 2.0, 3.0]], "y": [1]}}, False),  # wrong shape
        ({"inputs": {"x": [[1.0, 2.0]], "y": [1, 2]}}, False),  # rows differ
        ({"inputs": [[1.0, 2.0]]}, False),
    ],
}


def _content(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, str, Any]]]:
    """kind -> (MLflow's URL, ame's URL, the loaded model)."""
    from mlflow.pyfunc import scoring_server

    dirs = model_kinds.build(Path(tmp_path_factory.mktemp("kinds")))
    running: list[ThreadServer] = []
    out: dict[str, tuple[str, str, Any]] = {}
    try:
        for kind, directory in dirs.items():
            model = model_kinds.load(directory)
            theirs = ThreadServer(scoring_server.init(model)).start()
            running.append(theirs)
            loaded = LoadedModel(predictor=model, name=kind, version="1", source=directory)
            ours = ThreadServer(build_app(loaded, AppConfig(max_latency_ms=20.0))).start()
            running.append(ours)
            out[kind] = (theirs.url, ours.url, model)
        yield out
    finally:
        for server in running:
            server.stop()


async def _post_all(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    url + "/invocations", content=b, headers={"content-type": "application/json"}
                )
                for b in bodies
            )
        )


@pytest.mark.parametrize("kind", list(CORPUS))
def test_every_answer_is_mlflows(kind: str, servers: dict[str, tuple[str, str, Any]]) -> None:
    theirs_url, ours_url, model = servers[kind]
    cases = CORPUS[kind] + COMMON
    bodies = [_content(b) for b, _ in cases]
    plan = plan_for(model.metadata)
    for (body, fast), content in zip(cases, bodies, strict=True):
        doc, _ = decode(content)
        taken = plan is not None and doc is not None and plan.parse(doc) is not None
        assert taken is fast, (kind, body)
    # each body three times, all at once: merged batches, repeats included
    ours = asyncio.run(_post_all(ours_url, bodies * 3))
    with httpx.Client(timeout=60) as client:
        theirs = [
            client.post(
                theirs_url + "/invocations", content=b, headers={"content-type": "application/json"}
            )
            for b in bodies
        ]
    for i, (body, _) in enumerate(cases):
        expected = theirs[i]
        for got in (ours[i], ours[i + len(bodies)], ours[i + 2 * len(bodies)]):
            assert _comparable(got) == _comparable(expected), (kind, body)
            if expected.status_code == 200:
                assert got.content == expected.content, (kind, body)


def test_the_fast_bodies_were_merged(servers: dict[str, tuple[str, str, Any]]) -> None:
    """Merging happened: some predict call of the tensor model took several requests."""
    _, ours_url, _ = servers["sklearn-tensor"]
    body = _content({"inputs": R[:1]})
    replies = asyncio.run(_post_all(ours_url, [body] * 40))
    assert {r.status_code for r in replies} == {200}
    metrics = httpx.get(ours_url + "/metrics").text
    counts = {
        line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("ame_batch_size_bucket")
    }
    total = float(
        next(ln for ln in metrics.splitlines() if ln.startswith("ame_batch_size_count")).split()[1]
    )
    assert counts["1.0"] < total  # not every call predicted a single request


def test_fast_types_are_what_mlflow_reads_as_json() -> None:
    assert all(t.split(";")[0] == "application/json" for t in FAST_TYPES)
