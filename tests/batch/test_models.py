"""Other models score too: an encrypted package, a chat model on a loopback endpoint, workers."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ame.batch.scorer import Probe, ScoreOptions, pays, score
from ame.errors import PackageError
from tests.batch.conftest import FEATURES, Project, SavedModel, ame, frame, write
from tests.llm.llm_fake_server import FakeOpenAI


def test_encrypted_package_scores_with_its_key(tmp_path: Path, sk_model: SavedModel) -> None:
    from ame.packaging.build import build_package
    from ame.packaging.keys import generate_key_file

    key = generate_key_file(tmp_path / "model.key")
    build_package(sk_model.path, tmp_path / "model.ame", key=key, name="sk", version="7")
    data = frame(900, seed=41)
    write(data, tmp_path / "in.parquet")

    with pytest.raises(PackageError):  # no key anywhere: refused, nothing written
        score(str(tmp_path / "model.ame"), str(tmp_path / "in.parquet"), tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()

    done = ame("predict", "model.ame", "-i", "in.parquet", "-o", "out.jsonl", "--key-file",
               "model.key", "--id-col", "id", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["model"], summary["version"], summary["rows"]) == ("sk", "7", 900)
    out = pd.read_json(tmp_path / "out.jsonl", lines=True)
    assert out["id"].tolist() == data["id"].tolist()
    assert np.array_equal(out["prediction"], sk_model.model.predict(data[FEATURES]))


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_chat_model_scores_prompts_with_bounded_concurrency(
    tmp_path: Path, batch_project: Project, fake_openai: FakeOpenAI
) -> None:
    from ame.llm.register import register_llm_model
    from ame.registry.store import resolve_store

    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "model": "fake-gpt", "base_url": fake_openai.base_url, "timeout": 5,
        "max_retries": 0, "max_concurrency": 3, "api_key_env": None,
    }))  # fmt: skip
    store = resolve_store(batch_project.tracking_uri, batch_project.root)
    name = f"chat-{uuid.uuid4().hex[:8]}"
    version = register_llm_model(name, config, store=store).version
    prompts = pd.DataFrame({"qid": range(40), "prompt": [f"question {i}" for i in range(40)]})
    write(prompts, tmp_path / "prompts.jsonl")
    fake_openai.script.delay = 0.05  # slow enough for requests to overlap

    summary = score(
        f"{name}/{version}",
        str(tmp_path / "prompts.jsonl"),
        tmp_path / "answers.parquet",
        ScoreOptions(chunk_rows=16, id_columns=("qid",), workers=4),
        tracking_uri=batch_project.tracking_uri,
    )
    out = pd.read_parquet(tmp_path / "answers.parquet")
    assert out["qid"].tolist() == list(range(40))
    assert out["text"].tolist() == [f"echo: question {i}" for i in range(40)]
    assert len(fake_openai.script.bodies()) == 40
    # Processes never pay for a model that waits on an endpoint.
    assert summary.workers == 1 and "already concurrent" in summary.workers_note


def test_workers_that_pay_give_the_same_bytes_as_one_process(
    tmp_path: Path, slow_model: Path
) -> None:
    """A model that takes its time per chunk (0.15 s) on cheap Parquet: the scorer is the
    bottleneck, so two processes share it out, and write what one process writes."""
    from ame.batch.scorer import usable_cpus

    write(frame(2400, seed=42), tmp_path / "in.parquet")
    options = ScoreOptions(chunk_rows=100, id_columns=("id",))
    one = score(str(slow_model), str(tmp_path / "in.parquet"), tmp_path / "one.parquet", options)
    two = score(str(slow_model), str(tmp_path / "in.parquet"), tmp_path / "two.parquet",
                dataclasses.replace(options, workers=2))  # fmt: skip
    assert one.workers == 1
    assert two.workers == min(2, usable_cpus()), two.workers_note
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_workers_are_not_started_where_they_would_not_pay(
    tmp_path: Path, sk_model: SavedModel
) -> None:
    """A model that predicts 1000 rows in microseconds: the chunks left would not pay for
    the processes' start-up, or the reader is the bottleneck; one process, and why."""
    write(frame(8000, seed=43), tmp_path / "in.parquet")
    summary = score(str(sk_model.path), str(tmp_path / "in.parquet"), tmp_path / "o.parquet",
                    ScoreOptions(chunk_rows=1000, id_columns=("id",), workers=2))  # fmt: skip
    assert summary.workers == 1 and summary.rows == 8000
    assert "start-up" in summary.workers_note or "bottleneck" in summary.workers_note


@pytest.mark.parametrize(
    ("probe", "load", "left", "expected", "why"),
    [
        (Probe(chunks=2, scoring=1.0, waiting=0.5), 1.0, 100, 1, "bottleneck"),
        (Probe(chunks=2, scoring=0.2, waiting=0.0), 2.0, 10, 1, "start-up"),
        (Probe(chunks=2, scoring=1.0, waiting=0.1), 2.0, 100, 4, ""),
        (Probe(chunks=2, scoring=1.0, waiting=0.1), 2.0, None, 4, ""),  # rows in all unknown
        (Probe(chunks=0, scoring=0.0, waiting=0.0), 2.0, 0, 1, "nothing left"),
    ],
)
def test_pays_weighs_the_scoring_left_against_the_start_up(
    probe: Probe, load: float, left: int | None, expected: int, why: str
) -> None:
    workers, note = pays(4, probe, load, left)
    assert workers == expected and why in note
