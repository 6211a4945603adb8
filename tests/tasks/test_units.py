"""Pure helpers: byte formatting, resource translation, MLproject env files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ame._system import format_bytes
from ame.errors import ResourceUnavailableError
from ame.spec.model import Resources
from ame.tasks.mlproject import env_spec, load_mlproject
from ame.tasks.resources import available_cores, limits_for


def test_format_bytes_uses_the_unit_people_write() -> None:
    assert format_bytes(10 * 1000**3) == "10G"
    assert format_bytes(512 * 1024**2) == "512Mi"
    assert format_bytes(2 * 1024**3) == "2Gi"
    assert format_bytes(1536 * 1024**2) == "1536Mi"
    assert format_bytes(123) == "123B"


def test_limits_clamp_cores_and_set_thread_variables() -> None:
    limits = limits_for(Resources(cpu=64, memory=1000), count_gpus=lambda: 0)
    assert limits.cores == available_cores()
    assert limits.env["OPENBLAS_NUM_THREADS"] == "64"
    assert limits.env["NUMEXPR_NUM_THREADS"] == "64"
    assert limits.memory == 1000
    assert limits_for(Resources(gpu=2), count_gpus=lambda: 4).env["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_cpu_only_hides_gpus_instead_of_refusing() -> None:
    def no_gpus() -> int:
        raise AssertionError("--cpu-only must not look for GPUs")

    limits = limits_for(Resources(cpu=1, gpu=2), count_gpus=no_gpus, cpu_only=True)
    assert limits.env["CUDA_VISIBLE_DEVICES"] == ""
    assert limits.env["OMP_NUM_THREADS"] == "1"
    # Without a GPU request, --cpu-only changes nothing.
    assert "CUDA_VISIBLE_DEVICES" not in limits_for(Resources(cpu=1), cpu_only=True).env
    with pytest.raises(ResourceUnavailableError, match=r"asks for 2 GPU.*has 1.*--cpu-only"):
        limits_for(Resources(gpu=2), count_gpus=lambda: 1)


def test_conda_env_pip_dependencies(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text(
        "name: x\nconda_env: conda.yaml\nentry_points:\n  main:\n    command: python t.py\n"
    )
    (tmp_path / "conda.yaml").write_text(
        "dependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - six==1.16.0\n    - -r req.txt\n"
    )
    (tmp_path / "req.txt").write_text("attrs\n")
    spec = env_spec(load_mlproject(tmp_path))
    assert spec is not None
    assert spec.python_version == "3.11"
    assert spec.requirements == ["six==1.16.0", "-r", os.fspath(tmp_path / "req.txt")]
    assert [p.name for p in spec.files] == ["conda.yaml", "req.txt"]
