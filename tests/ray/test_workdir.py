"""What travels as a Ray job's working_dir, and the refusal when a dataset would not."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from ame.backends.ray.errors import WorkdirError
from ame.backends.ray.workdir import build_workdir, check_paths, max_file_size


def _tree(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text("print('hi')\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    for skipped in (".ame/mlflow.db", ".git/HEAD", "env/pyvenv.cfg", "env/lib/x.py"):
        (root / skipped).parent.mkdir(parents=True, exist_ok=True)
        (root / skipped).write_text("x")
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(b"0" * 5000)
    (root / "data" / "small.csv").write_text("a,b\n1,2\n")


def test_leaves_out_state_venvs_git_and_big_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    workdir = build_workdir(tmp_path, limit=1000)
    names = sorted(zipfile.ZipFile(io.BytesIO(workdir.data)).namelist())
    assert names == ["data/small.csv", "run.sh", "src/train.py"]
    assert workdir.left_out == [("data/big.bin", 5000)]
    assert {".ame", ".git", "env"} <= set(workdir.skipped_dirs)
    mode = zipfile.ZipFile(io.BytesIO(workdir.data)).getinfo("run.sh").external_attr >> 16
    assert mode & 0o111, "the executable bit survives the trip"
    # Deterministic: the same tree gives the same package name (uploaded once).
    assert build_workdir(tmp_path, limit=1000).uri == workdir.uri
    (tmp_path / "src" / "train.py").write_text("print('changed')\n")
    assert build_workdir(tmp_path, limit=1000).uri != workdir.uri


def test_refuses_a_dataset_that_would_be_left_out(tmp_path: Path) -> None:
    _tree(tmp_path)
    workdir = build_workdir(tmp_path, limit=1000)
    check_paths(tmp_path, workdir, {"small": tmp_path / "data" / "small.csv"}, 1000)
    with pytest.raises(WorkdirError, match=r"data/big.bin \(5k\) is over the 1k limit"):
        check_paths(tmp_path, workdir, {"raw": tmp_path / "data"}, 1000)
    with pytest.raises(WorkdirError, match=r"inside \.ame/"):
        check_paths(tmp_path, workdir, {"cache": tmp_path / ".ame" / "mlflow.db"}, 1000)
    with pytest.raises(WorkdirError, match="outside the task's directory"):
        check_paths(tmp_path, workdir, {"far": tmp_path.parent}, 1000)


def test_the_limit_is_settable() -> None:
    assert max_file_size({}) == 100 * 10**6
    assert max_file_size({"AME_RAY_MAX_FILE_SIZE": "2Mi"}) == 2 * 1024**2
    with pytest.raises(WorkdirError, match="AME_RAY_MAX_FILE_SIZE='lots' is not a size"):
        max_file_size({"AME_RAY_MAX_FILE_SIZE": "lots"})
