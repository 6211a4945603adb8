"""The shared input limits: JSON depth, file kind and size, on real files and a real fifo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ame.boundedio import InputLimitError, loads_json, read_regular_file


def test_json_depth_is_bounded() -> None:
    assert loads_json("[" * 1000 + "]" * 1000)
    with pytest.raises(InputLimitError, match="nested deeper"):
        loads_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputLimitError, match="invalid JSON"):
        loads_json(b"{")


def test_only_regular_files_within_the_cap(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"x" * 10)
    assert read_regular_file(good, 10) == b"x" * 10
    with pytest.raises(InputLimitError, match="larger than the limit of 9 bytes"):
        read_regular_file(good, 9)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputLimitError, match="a fifo"):
        read_regular_file(fifo, 10)  # returns at once: no writer is waited for
    with pytest.raises(InputLimitError, match="a device"):
        read_regular_file("/dev/zero", 10)
    with pytest.raises(InputLimitError, match="a directory"):
        read_regular_file(tmp_path, 10)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputLimitError, match="a dangling symlink"):
        read_regular_file(dangling, 10)
