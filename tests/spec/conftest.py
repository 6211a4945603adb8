"""Shared helpers of the ame.yml tests: fixture paths and a way to write small projects."""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ame_bin() -> str:
    """The real ``ame`` console script of the venv running the tests."""
    found = shutil.which("ame", path=str(Path(sys.executable).parent))
    assert found, "the ame console script is not installed in this venv"
    return found


@pytest.fixture
def write_project(tmp_path: Path) -> Callable[..., Path]:
    """Write ``<tmp>/<directory>/ame.yml`` from dedented text and return the file."""

    def write(text: str, directory: str = "proj") -> Path:
        folder = tmp_path / directory
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "ame.yml"
        file.write_text(textwrap.dedent(text))
        return file

    return write
