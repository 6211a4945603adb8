"""The parts directory of a run: finished chunks, the record of them, and what may resume.

Beside the output ``OUT`` lives ``.OUT.ame-parts/`` while a run is unfinished:

- ``run.json``: what the run is (input fingerprint, content options, model
  identity); ``--resume`` refuses when the current run differs;
- ``part-NNNNNNN.arrow`` (Arrow IPC) and ``errors-NNNNNNN.jsonl``: one chunk's output
  rows and refused rows, each written to a temporary name and renamed;
- ``done.jsonl``: one line per finished chunk, appended only after its files are
  in place. A run killed at any point leaves at worst a temporary file or a
  torn last line, both ignored; the chunk is simply done again.

When the final output is in place the directory is removed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ame.batch.errors import BatchError, ResumeRefusedError


@dataclass(frozen=True)
class ChunkRecord:
    """A finished chunk: its index, rows written, rows refused."""

    index: int
    rows: int
    errors: int


def parts_dir(output: Path) -> Path:
    """The parts directory of ``output``."""
    return output.parent / f".{output.name}.ame-parts"


class PartStore:
    """The parts directory of one output, opened for a fresh or a resumed run."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.dir = parts_dir(output)
        self.record = self.dir / "done.jsonl"
        self.manifest = self.dir / "run.json"
        self._fd: Optional[int] = None

    def part(self, index: int) -> Path:
        return self.dir / f"part-{index:07d}.arrow"

    def errors(self, index: int) -> Path:
        return self.dir / f"errors-{index:07d}.jsonl"

    def open(self, identity: dict[str, Any], resume: bool) -> dict[int, ChunkRecord]:
        """Start (or, with ``resume``, continue) the run ``identity`` describes.

        Returns the chunks already finished. A fresh run discards any parts
        left by an earlier one; ``resume`` with nothing to resume starts fresh.
        """
        done: dict[int, ChunkRecord] = {}
        if resume and self.manifest.is_file():
            try:
                before = json.loads(self.manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ResumeRefusedError(f"cannot read {self.manifest}: {exc}") from exc
            differences = describe_differences(before, identity)
            if differences:
                raise ResumeRefusedError(
                    f"cannot resume {self.output}: {'; '.join(differences)} "
                    "(run without --resume to start again)"
                )
            done = self._finished()
        else:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            try:
                self.dir.mkdir(parents=True)
            except OSError as exc:
                raise BatchError(f"cannot write beside the output {self.output}: {exc}") from exc
            tmp = self.dir / ".run.json.tmp"
            tmp.write_text(json.dumps(identity, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.manifest)
        self._fd = os.open(self.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return done

    def _finished(self) -> dict[int, ChunkRecord]:
        done: dict[int, ChunkRecord] = {}
        if not self.record.is_file():
            return done
        text = self.record.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        complete = lines if text.endswith("\n") else lines[:-1]  # a torn last line is not done
        for line in complete:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                record = ChunkRecord(int(item["index"]), int(item["rows"]), int(item["errors"]))
            except (ValueError, KeyError, TypeError):
                continue
            if self.part(record.index).is_file():
                done[record.index] = record
        if not text.endswith("\n"):
            # Drop the torn line so the next append starts on a line of its own.
            with self.record.open("w", encoding="utf-8") as fh:
                fh.write("\n".join(complete) + ("\n" if complete else ""))
        return done

    def finish_chunk(self, record: ChunkRecord) -> None:
        """Note that chunk ``record.index`` is done (its files already renamed into place)."""
        assert self._fd is not None, "open() first"
        line = json.dumps({"index": record.index, "rows": record.rows, "errors": record.errors})
        os.write(self._fd, (line + "\n").encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Delete the parts directory (the final output is in place, or the run is void)."""
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def describe_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between an interrupted run's identity and this one's, in words."""
    out: list[str] = []
    if before.get("model") != now.get("model"):
        out.append(f"the model differs ({before.get('model')} then, {now.get('model')} now)")
    old_inputs = before.get("inputs") or []
    new_inputs = now.get("inputs") or []
    if [i.get("path") for i in old_inputs] != [i.get("path") for i in new_inputs]:
        out.append("the input files differ")
    else:
        for old, new in zip(old_inputs, new_inputs, strict=True):
            if old != new:
                out.append(f"the input {new.get('path')} changed since the interrupted run")
    old_options = before.get("options") or {}
    new_options = now.get("options") or {}
    for key in sorted(set(old_options) | set(new_options)):
        if old_options.get(key) != new_options.get(key):
            out.append(f"{key} was {old_options.get(key)!r}, now {new_options.get(key)!r}")
    return out
