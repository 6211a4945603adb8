"""Adaptive batching: concurrent requests share predict calls and still get their own answers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from tests.serving.helpers import FEATURES, Server, rows, split_body

pytestmark = pytest.mark.timeout(1200)


def _bodies(n: int) -> list[tuple[dict[str, Any], bool]]:
    bodies = []
    for i in range(n):
        data = rows(1 + i % 3, seed=100 + i)
        if i % 10 == 3:
            bodies.append(({"dataframe_records": [{"a": 1.0, "b": 2.0, "c": 3.0}]}, False))
        elif i % 10 == 7:
            bodies.append(
                ({"dataframe_records": [dict(zip(FEATURES, ["x", 1, 2, 3], strict=True))]}, False)
            )
        elif i % 2:
            bodies.append(
                ({"dataframe_records": [dict(zip(FEATURES, r, strict=True)) for r in data]}, True)
            )
        else:
            bodies.append((split_body(data), True))
    return bodies


def _rows_of(body: dict[str, Any]) -> list[list[float]]:
    if "dataframe_split" in body:
        return body["dataframe_split"]["data"]
    return [[rec[f] for f in FEATURES] for rec in body["dataframe_records"]]


def _batches_over_one(metrics: str) -> float:
    count = float(re.search(r"^ame_batch_size_count ([0-9.e+]+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    ones = float(
        re.search(r'^ame_batch_size_bucket\{le="1.0"\} ([0-9.e+]+)$', metrics, re.M).group(1)
    )  # type: ignore[union-attr]
    return count - ones


def test_concurrent_requests_are_batched_and_answered_in_order(
    lr_server: Server, lr_model: Any
) -> None:
    import pandas as pd

    before = _batches_over_one(httpx.get(lr_server.url + "/metrics").text)
    bodies = _bodies(400)

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=lr_server.url, limits=limits, timeout=120) as client:
            return await asyncio.gather(
                *(client.post("/invocations", json=b) for b, _ in bodies), return_exceptions=True
            )

    responses = asyncio.run(fire())
    failed = [r for r in responses if isinstance(r, Exception)]
    assert not failed, (
        f"{len(failed)} requests failed ({failed[0]!r}); server log:\n{lr_server.log_tail()}"
    )
    for (body, valid), resp in zip(bodies, responses, strict=True):
        if valid:
            assert resp.status_code == 200, resp.text
            expected = lr_model.predict(pd.DataFrame(_rows_of(body), columns=FEATURES)).tolist()
            assert resp.json() == {"predictions": expected}
        else:
            alone = httpx.post(lr_server.url + "/invocations", json=body)
            assert resp.status_code == alone.status_code == 400
            ours, single = resp.json(), alone.json()
            ours.pop("stack_trace", None)
            single.pop("stack_trace", None)
            assert ours == single
    after = _batches_over_one(httpx.get(lr_server.url + "/metrics").text)
    assert after > before, "no predict call merged more than one request"


def _job(rows: int) -> Any:
    from ame.serving.batching import Job, ModelState
    from ame.serving.codec import Parsed

    class Plan:
        def parse(self, doc: Any) -> None:
            return None

        def build(self, parts: list[Any]) -> list[Any]:
            return [v for p in parts for v in p]

    class Model:
        predictor = None

    state = ModelState(
        model=Model(), plan=Plan(), input_schema=None, output_name="p", fast_predict=lambda d: d
    )
    return Job(
        state=state,
        parsed=Parsed(key=None, rows=rows, part=list(range(rows))),
        answer=lambda preds: (200, repr(list(preds)).encode(), b"text/plain"),
        alone=lambda: (500, b"", b""),
    )


def test_a_pre_batched_request_does_not_wait_for_company() -> None:
    """With another request being read, a small one waits for it; a full batch does not."""
    from ame.serving.batching import Batcher
    from ame.serving.metrics import Metrics

    async def scenario() -> tuple[list[Any], float]:
        metrics = Metrics()
        batcher = Batcher(max_batch_size=8, max_latency_ms=60_000, metrics=metrics)
        batcher.start()
        loop = asyncio.get_running_loop()
        try:
            batcher.arriving = 1  # a request is being read: the batcher may wait for it
            big = await asyncio.wait_for(batcher.submit(_job(8)), timeout=30)
            small = loop.create_task(batcher.submit(_job(1)))
            await asyncio.sleep(0)  # let the batcher take the small one and start waiting
            batcher.arriving = 0  # the request being read is read: it is queued now
            second = loop.create_task(batcher.submit(_job(2)))
            replies = await asyncio.wait_for(asyncio.gather(small, second), timeout=30)
            samples = next(iter(metrics.batch_size.collect())).samples
            total = next(s.value for s in samples if s.name.endswith("_sum"))
            return [big, *replies], total
        finally:
            batcher.arriving = 0
            await batcher.stop()

    replies, total = asyncio.run(scenario())
    assert [r[1] for r in replies] == [b"[0, 1, 2, 3, 4, 5, 6, 7]", b"[0]", b"[0, 1]"]
    assert total == 1 + 2  # two calls: the big one alone (1), then the small two merged (2)
