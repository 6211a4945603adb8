"""Fuzzed request bodies: whatever a client sends, the answer is never a 5xx and never a traceback.

A seeded mutator (so a failure reproduces) starts from valid bodies of every
protocol the server speaks (MLflow's split, records, inputs, instances and CSV;
v2 infer) and breaks them the ways clients do: cut short, bytes flipped, values
of the wrong type, keys renamed, structures nested, wrong content types. It is
bounded in count and in time.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx
import pytest

from tests.serving.helpers import Server, Store, rows, split_body

pytestmark = pytest.mark.timeout(600)

CASES = 400
DEADLINE_S = 90.0
ODD_VALUES: list[Any] = [None, True, -1, 0, 1e308, "x", "", [], {}, [[]], [None], {"a": 1}, "NaN"]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/csv",
    "application/octet-stream",
    "text/plain",
    "",
]


def _seeds(store: Store) -> list[tuple[str, Any]]:
    data = rows(3)
    split = split_body(data)
    columns = split["dataframe_split"]["columns"]
    records = [dict(zip(columns, row, strict=True)) for row in data]
    v2 = {
        "inputs": [
            {"name": name, "shape": [3], "datatype": "FP64", "data": [row[i] for row in data]}
            for i, name in enumerate(columns)
        ]
    }
    return [
        ("/invocations", split),
        ("/invocations", {"dataframe_records": records}),
        ("/invocations", {"inputs": data}),
        ("/invocations", {"instances": records}),
        (f"/v2/models/{store.lr}/infer", v2),
    ]


def _mutate_value(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` with one random change somewhere inside it."""
    if isinstance(value, dict) and value and depth < 6:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            out.pop(key)
        elif roll < 0.3:
            out[key + rng.choice(["_", "x", "s"])] = out.pop(key)
        else:
            out[key] = _mutate_value(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and depth < 6:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        roll = rng.random()
        if roll < 0.15:
            out_list.pop(i)
        elif roll < 0.3:
            out_list.append(rng.choice(ODD_VALUES))
        else:
            out_list[i] = _mutate_value(rng, out_list[i], depth + 1)
        return out_list
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(ODD_VALUES)
    if roll < 0.8:
        return [value] * rng.randint(0, 3)
    return {"v": value}


def _mutate_bytes(rng: random.Random, body: bytes) -> bytes:
    roll = rng.random()
    if roll < 0.35:
        return body[: rng.randrange(len(body) + 1)]
    if roll < 0.7:
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    depth = rng.choice([10, 500, 1100, 5000])
    return b"[" * depth + body + b"]" * depth


def test_fuzzed_bodies_never_5xx(lr_server: Server, store: Store) -> None:
    rng = random.Random(20261201)
    seeds = _seeds(store)
    deadline = time.monotonic() + DEADLINE_S
    sent = 0
    failures: list[str] = []
    with httpx.Client(base_url=lr_server.url, timeout=30.0) as client:
        while sent < CASES and time.monotonic() < deadline:
            path, seed = rng.choice(seeds)
            value = _mutate_value(rng, seed)
            body = json.dumps(value).encode()
            if rng.random() < 0.4:
                body = _mutate_bytes(rng, body)
            content_type = rng.choice(CONTENT_TYPES) if rng.random() < 0.3 else CONTENT_TYPES[0]
            headers = {"content-type": content_type} if content_type else {}
            resp = client.post(path, content=body, headers=headers)
            sent += 1
            if resp.status_code >= 500:
                failures.append(f"{resp.status_code} {path} {content_type!r} {body[:200]!r}")
    assert sent >= 100, f"only {sent} requests in {DEADLINE_S}s"
    assert not failures, "\n".join(failures[:10])
    assert "Traceback" not in lr_server.log_tail(2_000_000)
    # the server still answers a good request afterwards
    good = httpx.post(lr_server.url + "/invocations", json=split_body(rows(2)))
    assert good.status_code == 200
