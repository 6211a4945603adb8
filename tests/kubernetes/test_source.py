"""How pods get the project: a deterministic archive on the tracking server, or git at a commit."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from ame.backends.kubernetes.apply import Plan, Target, upload_source
from ame.backends.kubernetes.errors import KubernetesError
from ame.backends.kubernetes.fetch import fetch_archive, fetch_git, unpack
from ame.backends.kubernetes.source import archive_source, git_source, project_source
from ame.spec import load_project
from tests.conftest import REPO_ROOT
from tests.kubernetes.conftest import write_project

PROJECT = "project: src_p\ntasks:\n  - name: t\n    runcommand: python t.py\n"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_archive_bytes_depend_only_on_names_and_contents(tmp_path: Path) -> None:
    a = write_project(tmp_path / "one" / "src_p", PROJECT, **{"t.py": "print(1)\n"})
    b = write_project(tmp_path / "two" / "src_p", PROJECT, **{"t.py": "print(1)\n"})
    (b / ".ame").mkdir()
    (b / ".ame" / "mlflow.db").write_text("state, never shipped")
    (b / "__pycache__").mkdir()
    (b / "__pycache__" / "t.cpython-311.pyc").write_bytes(b"\0")
    first, data = archive_source(load_project(a))
    second, again = archive_source(load_project(b))
    assert data == again and first.url == second.url
    assert first.url == f"mlflow-artifacts:/ame-sources/{hashlib.sha256(data).hexdigest()}.tar.gz"
    (b / "t.py").write_text("print(2)\n")
    assert archive_source(load_project(b))[0].revision != first.revision
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["src_p/ame.yml", "src_p/t.py"]


def test_archive_carries_the_template_projects(tmp_path: Path) -> None:
    source, data = archive_source(load_project(REPO_ROOT / "examples" / "xgboost_project"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert "shared_templates/ame.yml" in names and "xgboost_project/train.py" in names
    assert source.subdir == "xgboost_project"


def test_git_source_is_the_commit_and_falls_back_when_dirty(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "--quiet", "--bare", str(remote))
    repo = tmp_path / "repo"
    write_project(repo / "proj", PROJECT, **{"t.py": "print(1)\n"})
    _git(repo, "init", "--quiet")
    _git(repo, "add", ".")
    _git(repo, "commit", "--quiet", "-m", "first")
    _git(repo, "remote", "add", "origin", str(remote))
    _git(repo, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    commit = _git(repo, "rev-parse", "HEAD")
    project = load_project(repo / "proj")
    found = git_source(project)
    assert found is not None
    assert (found.kind, found.url, found.revision, found.subdir) == (
        "git",
        str(remote),
        commit,
        "proj",
    )
    # The pod's side: clone and check out exactly that commit.
    fetch_git(found.url, found.revision, tmp_path / "pod")
    assert (tmp_path / "pod" / "proj" / "t.py").read_text() == "print(1)\n"
    (repo / "proj" / "t.py").write_text("print('changed')\n")
    assert git_source(project) is None
    assert project_source(project, "auto").kind == "archive"
    with pytest.raises(KubernetesError, match="use --source archive"):
        project_source(project, "git")


def test_unpack_refuses_an_archive_with_another_hash(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "src_p", PROJECT))
    source, data = archive_source(project)
    with pytest.raises(KubernetesError, match="expected"):
        unpack(data + b"x", source.revision, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    unpack(data, source.revision, tmp_path / "out")
    assert (tmp_path / "out" / "src_p" / "ame.yml").read_text() == PROJECT


def test_upload_then_fetch_through_a_real_tracking_server(
    tmp_path: Path, mlflow_server: str
) -> None:
    project = load_project(
        write_project(tmp_path / "src_p", PROJECT, **{"t.py": f"print({tmp_path.name!r})\n"})
    )
    source, data = archive_source(project)
    plan = Plan(Target(None, "default"), [], source_archive=data, source_uri=source.url)
    upload_source(plan, mlflow_server)
    fetch_archive(source.url, source.revision, tmp_path / "pod", tracking_uri=mlflow_server)
    assert (tmp_path / "pod" / "src_p" / "t.py").read_text() == f"print({tmp_path.name!r})\n"
