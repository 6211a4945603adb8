"""Following an alias: the server swaps versions by itself, with no failed request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import wait_until
from tests.serving.helpers import FEATURES, Server, Store, rows, split_body, start_ame

pytestmark = pytest.mark.timeout(1200)

ALIAS = "staging"


@pytest.fixture(scope="module")
def following(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import mlflow

    mlflow.MlflowClient(tracking_uri=store.uri, registry_uri=store.uri).set_registered_model_alias(
        store.lr, ALIAS, "1"
    )
    server = start_ame(
        store,
        [f"{store.lr}@{ALIAS}", "--workers", "2", "--poll-interval", "0.5"],
        tmp_path_factory.mktemp("alias"),
    )
    yield server
    server.stop()


def test_alias_move_swaps_version_under_load_without_failures(
    following: Server, store: Store, lr_model: Any
) -> None:
    import mlflow
    import pandas as pd

    data = rows(8, seed=42)
    v1 = lr_model.predict(pd.DataFrame(data, columns=FEATURES)).tolist()
    v2 = [1 - p for p in v1]  # version 2 was trained on flipped labels
    body = split_body(data)
    seen: list[tuple[int, Any]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=following.url, timeout=60) as client:
            while not stop.is_set():
                # A new connection each time, so every worker takes a share.
                resp = client.post("/invocations", json=body, headers={"connection": "close"})
                seen.append((resp.status_code, resp.json().get("predictions")))

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        # Traffic is flowing (every thread has been answered) before the alias moves.
        wait_until(lambda: len(seen) >= 20, timeout=120, what="traffic to flow")
        assert httpx.get(f"{following.url}/v2/models/{store.lr}").json()["versions"] == ["1"]
        moved_at = len(seen)
        mlflow.MlflowClient(
            tracking_uri=store.uri, registry_uri=store.uri
        ).set_registered_model_alias(store.lr, ALIAS, "2")

        # Every worker swaps on its own poll, so a sample of /v2/models can miss a
        # late one; what the user sees settles instead: once 40 answers in a row
        # (each on a new connection, so spread over the workers) are version 2's, all
        # have swapped.
        def settled() -> bool:
            recent = seen[moved_at:][-40:]
            return len(recent) == 40 and all(tuple(p) == tuple(v2) for _, p in recent)

        wait_until(settled, timeout=180, interval=0.1, what="every worker to answer as version 2")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert seen, "no traffic was sent"
    assert all(status == 200 for status, _ in seen), {s for s, _ in seen}
    assert {tuple(p) for _, p in seen} <= {tuple(v1), tuple(v2)}
    assert tuple(seen[-1][1]) == tuple(v2)
    metrics = httpx.get(following.url + "/metrics").text
    assert f'ame_model_info{{model="{store.lr}",version="2"}} 1.0' in metrics
    assert "ame_model_swaps_total" in metrics
