"""Killed or interrupted runs, resumed: byte for byte the output of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

from ame.batch.errors import ResumeRefusedError
from ame.batch.parts import parts_dir
from ame.batch.scorer import ScoreOptions, score
from tests.batch.conftest import AME, SavedModel, frame, write


class Interrupt(KeyboardInterrupt):
    """What Ctrl-C raises; here from the progress callback once some chunks are done."""


def _interrupt_after(rows: int):  # type: ignore[no-untyped-def]
    def on_progress(done: int, total: Optional[int]) -> None:
        if done >= rows:
            raise Interrupt()

    return on_progress


def _done_lines(output: Path) -> int:
    record = parts_dir(output) / "done.jsonl"
    return len(record.read_text().splitlines()) if record.is_file() else 0


def test_killed_run_resumed_is_byte_identical(tmp_path: Path, slow_model: Path) -> None:
    write(frame(20 * 500, seed=21), tmp_path / "in.csv")
    reference = tmp_path / "reference.parquet"
    score(str(slow_model), str(tmp_path / "in.csv"), reference,
          ScoreOptions(chunk_rows=500, id_columns=("id",)))  # fmt: skip

    out = tmp_path / "out.parquet"
    args = [AME, "predict", str(slow_model), "-i", "in.csv", "-o", str(out),
            "--chunk-rows", "500", "--id-col", "id"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _done_lines(out) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no chunk finished in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists() and _done_lines(out) < 20

    done = subprocess.run([*args, "--resume", "--json", "--progress-every", "2500"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Piped, progress is a plain line every 2500 rows (resumed chunks count as read).
    progress = [line for line in done.stderr.splitlines() if line.startswith("scored ")]
    assert progress[-1].startswith("scored 10,000/10,000 rows") and len(progress) >= 2
    summary = json.loads(done.stdout)
    assert summary["resumed_chunks"] >= 3 and summary["rows"] == 10_000
    assert out.read_bytes() == reference.read_bytes()
    assert not parts_dir(out).exists()


def test_interrupted_with_torn_record_and_stray_files(tmp_path: Path, sk_model: SavedModel) -> None:
    write(frame(5000, seed=22), tmp_path / "in.jsonl")
    options = ScoreOptions(chunk_rows=400, id_columns=("id",), output_format="csv")
    reference = tmp_path / "reference.out"
    score(str(sk_model.path), str(tmp_path / "in.jsonl"), reference, options)

    out = tmp_path / "out.csv"
    with pytest.raises(Interrupt):
        score(str(sk_model.path), str(tmp_path / "in.jsonl"), out, options,
              on_progress=_interrupt_after(2000))  # fmt: skip
    parts = parts_dir(out)
    assert _done_lines(out) == 5 and not out.exists()
    # A kill mid-append and mid-write: a torn last line and a half-written part.
    with (parts / "done.jsonl").open("a") as fh:
        fh.write('{"index": 5, "ro')
    (parts / ".part-0000005.arrow.tmp").write_bytes(b"garbage")
    summary = score(str(sk_model.path), str(tmp_path / "in.jsonl"), out,
                    ScoreOptions(**{**options.__dict__, "resume": True}))  # fmt: skip
    assert summary.resumed_chunks == 5 and summary.rows == 5000
    assert out.read_bytes() == reference.read_bytes()


def _interrupted(tmp_path: Path, model: Path, options: ScoreOptions) -> Path:
    out = tmp_path / "out.parquet"
    with pytest.raises(Interrupt):
        score(str(model), str(tmp_path / "in.parquet"), out, options,
              on_progress=_interrupt_after(600))  # fmt: skip
    assert parts_dir(out).is_dir()
    return out


def test_resume_refused_after_the_input_changed(tmp_path: Path, sk_model: SavedModel) -> None:
    write(frame(3000, seed=23), tmp_path / "in.parquet")
    options = ScoreOptions(chunk_rows=300)
    out = _interrupted(tmp_path, sk_model.path, options)
    write(frame(3000, seed=24), tmp_path / "in.parquet")  # same size, other values
    with pytest.raises(ResumeRefusedError) as caught:
        score(str(sk_model.path), str(tmp_path / "in.parquet"), out,
              ScoreOptions(chunk_rows=300, resume=True))  # fmt: skip
    assert caught.value.exit_code == 2
    assert "changed since the interrupted run" in str(caught.value)
    assert not out.exists() and parts_dir(out).is_dir()  # nothing lost: still resumable


def test_resume_refused_when_options_or_model_differ(
    tmp_path: Path, sk_model: SavedModel, tensor_model: SavedModel
) -> None:
    write(frame(3000, seed=25), tmp_path / "in.parquet")
    out = _interrupted(tmp_path, sk_model.path, ScoreOptions(chunk_rows=300))
    with pytest.raises(ResumeRefusedError, match="chunk_rows was 300, now 250"):
        score(str(sk_model.path), str(tmp_path / "in.parquet"), out,
              ScoreOptions(chunk_rows=250, resume=True))  # fmt: skip
    with pytest.raises(ResumeRefusedError, match="the model differs"):
        score(str(tensor_model.path), str(tmp_path / "in.parquet"), out,
              ScoreOptions(chunk_rows=300, resume=True))  # fmt: skip
    # The same run resumes; a fresh run (no --resume) starts over.
    summary = score(str(sk_model.path), str(tmp_path / "in.parquet"), out,
                    ScoreOptions(chunk_rows=300, resume=True))  # fmt: skip
    assert summary.resumed_chunks == 2 and summary.rows == 3000
