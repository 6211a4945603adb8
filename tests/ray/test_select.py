"""Choosing a backend: --backend, AME_BACKEND, ame.yml, then local; RAY_ADDRESS honoured."""

from __future__ import annotations

from pathlib import Path

import pytest

from ame.backends.select import BackendError, choose_backend, configured_kinds
from ame.spec import load_project
from ame.spec.model import Project


def _project(tmp_path: Path, backend: str = "") -> Project:
    (tmp_path / "ame.yml").write_text(f"project: p\n{backend}")
    return load_project(tmp_path / "ame.yml")


RAY_YML = "backend:\n  kind: ray\n  ray: {address: '127.0.0.1:8265', namespace: team}\n"


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    project = _project(tmp_path, RAY_YML)
    assert choose_backend(None, None, {}).kind == "local"
    assert choose_backend(None, None, {}).source == "default"
    from_file = choose_backend(None, project, {})
    assert (from_file.kind, from_file.address, from_file.namespace) == (
        "ray",
        "http://127.0.0.1:8265",
        "team",
    )
    assert choose_backend(None, project, {"AME_BACKEND": "local"}).source == "AME_BACKEND"
    flag = choose_backend("local", project, {"AME_BACKEND": "ray"})
    assert (flag.kind, flag.source) == ("local", "--backend")
    assert flag.describe() == "backend: local (--backend)"


def test_ray_address_from_environment_wins_over_file(tmp_path: Path) -> None:
    project = _project(tmp_path, RAY_YML)
    choice = choose_backend("ray", project, {"RAY_ADDRESS": "http://10.0.0.9:8265/"})
    assert choice.address == "http://10.0.0.9:8265"
    assert choice.describe() == "backend: ray at http://10.0.0.9:8265 (--backend)"


def test_ray_without_an_address_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="RAY_ADDRESS"):
        choose_backend("ray", _project(tmp_path), {})
    with pytest.raises(BackendError, match="HTTP address"):
        choose_backend("ray", None, {"RAY_ADDRESS": "ray://head:10001"})
    with pytest.raises(BackendError, match="unknown backend 'nomad' from AME_BACKEND"):
        choose_backend(None, None, {"AME_BACKEND": "nomad"})


def test_configured_kinds_lists_every_backend_once(tmp_path: Path) -> None:
    assert configured_kinds(None, {}) == ["local"]
    assert configured_kinds(_project(tmp_path, RAY_YML), {"AME_BACKEND": "ray"}) == ["local", "ray"]
    assert configured_kinds(None, {"RAY_ADDRESS": "http://h:8265"}) == ["local", "ray"]
