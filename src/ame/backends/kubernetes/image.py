"""Dockerfiles (and their build contexts) for the images the rendered pods run.

* The **runner** image of a task: Python at the task's ``pythonVersion``, git,
  ame, uv and the executor's own tool (poetry, pipenv), so ``ame task run`` in
  the pod builds the task's environment as it does on a laptop.
* The **serving** image of a model version: ame plus the requirements pinned in
  that version's MLmodel (its ``requirements.txt``), as ``mlflow models
  generate-dockerfile`` does. The model itself is not copied in: the pod loads
  it from the tracking server, so one image serves every version with the same
  requirements.

ame goes in from the source tree this ame runs from (copied into the context),
else from the package index at this ame's version. A context is written to a
temporary directory first and moved into place whole.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ame import __version__
from ame.backends.kubernetes.errors import ImageBuildError, KubernetesError
from ame.backends.kubernetes.options import SERVING_PORT
from ame.backends.kubernetes.pods import RUN_AS
from ame.registry.resolved import ResolvedVersion
from ame.spec.model import Task

_TOOLS = {"poetry": ["poetry"], "pipenv": ["pipenv"]}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


@dataclass(frozen=True)
class BuildContext:
    """A written build context: its directory, the Dockerfile, the tag ame gives the image."""

    directory: Path
    dockerfile: Path
    tag: str


def ame_source_root() -> Optional[Path]:
    """The source tree this ame was installed from (editable installs), if there is one."""
    import ame

    for parent in Path(ame.__file__).resolve().parents:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file():
            try:
                text = pyproject.read_text(encoding="utf-8")
            except OSError:
                return None
            named = re.search(r'^name\s*=\s*"ame"\s*$', text, re.MULTILINE) is not None
            return parent if named and (parent / "src" / "ame").is_dir() else None
    return None


def _add_ame(context: Path) -> tuple[str, str]:
    """Put ame in ``context``; returns (the COPY line, the pip argument)."""
    root = ame_source_root()
    if root is None:
        return "", f"ame=={__version__}"
    target = context / "ame-src"
    shutil.copytree(root / "src" / "ame", target / "src" / "ame", ignore=_IGNORE)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).is_file():
            shutil.copy2(root / name, target / name)
    return "COPY ame-src /opt/ame-src\n", "/opt/ame-src"


def _user() -> str:
    return f"RUN useradd --uid {RUN_AS} --create-home --home-dir /home/ame ame\nUSER {RUN_AS}\n"


def _write_context(out_dir: Path, fill: Callable[[Path], str]) -> Path:
    """Build a context with ``fill`` (it returns the Dockerfile) and move it to ``out_dir``."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists() and not (out_dir / "Dockerfile").is_file() and any(out_dir.iterdir()):
        raise KubernetesError(f"{out_dir} is not empty and holds no Dockerfile; choose another -o")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        (tmp / "Dockerfile").write_text(fill(tmp), encoding="utf-8")
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-old-", dir=out_dir.parent))
            os.replace(out_dir, old / "context")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "Dockerfile"


def runner_context(task: Task, out_dir: Path) -> BuildContext:
    """The build context of the runner image of ``task``."""
    from ame.backends.kubernetes.job import runner_image

    python = task.executor.python_version or "3.11"
    tools = " ".join(["uv", *_TOOLS.get(task.executor.kind, [])])

    def fill(context: Path) -> str:
        copy, ame_arg = _add_ame(context)
        return (
            f"# The runner image of task {task.name} ({task.executor.kind} executor),\n"
            f"# written by `ame image dockerfile --task {task.name}` (ame {__version__}).\n"
            f"FROM python:{python}-slim\n"
            "RUN apt-get update && apt-get install -y --no-install-recommends git "
            "&& rm -rf /var/lib/apt/lists/*\n"
            f"{copy}"
            f"RUN pip install --no-cache-dir {ame_arg} {tools} && rm -rf /opt/ame-src\n"
            f"{_user()}"
            "WORKDIR /workspace\n"
        )

    dockerfile = _write_context(out_dir, fill)
    return BuildContext(dockerfile.parent, dockerfile, runner_image(task))


@dataclass(frozen=True, kw_only=True)
class ModelFiles(ResolvedVersion):
    """What a serving image needs from a version: its requirements and Python version.

    Which version it is, is the registry's one record of a resolved version
    (an image always serves a registered one, so ``name`` and ``version`` are set).
    """

    name: str
    version: str
    requirements: str
    python: str


def model_files(registry: object, ref: str) -> ModelFiles:
    """The requirements and Python version logged with the version ``ref`` names."""
    import mlflow.artifacts
    import yaml

    from ame.registry.facade import Registry

    assert isinstance(registry, Registry)
    record = registry.resolve(ref)
    base = registry.client.get_model_version_download_uri(record.name, record.version)
    uri = registry.store.tracking_uri
    with tempfile.TemporaryDirectory() as tmp:
        try:
            req = mlflow.artifacts.download_artifacts(
                f"{base}/requirements.txt", dst_path=tmp, tracking_uri=uri
            )
        except Exception as exc:
            raise KubernetesError(
                f"{record.name} version {record.version} has no requirements.txt: {exc}"
            ) from exc
        requirements = Path(req).read_text(encoding="utf-8")
        python = "3.11"
        try:
            env = mlflow.artifacts.download_artifacts(
                f"{base}/python_env.yaml", dst_path=tmp, tracking_uri=uri
            )
            logged = str(yaml.safe_load(Path(env).read_text(encoding="utf-8")).get("python", ""))
            python = ".".join(logged.split(".")[:2]) or python
        except Exception:  # older models: no python_env.yaml; the default Python serves them
            pass
    return ModelFiles(
        uri=record.uri,
        name=record.name,
        version=record.version,
        run_id=record.run_id,
        requirements=requirements,
        python=python,
    )


def serving_context(files: ModelFiles, project_name: str, out_dir: Path) -> BuildContext:
    """The build context of the image serving version ``files.version``."""
    from ame.backends.kubernetes.names import dns_label

    tag = f"ame-{dns_label(project_name, files.name)}:{files.version}"

    def fill(context: Path) -> str:
        copy, ame_arg = _add_ame(context)
        (context / "requirements.txt").write_text(files.requirements, encoding="utf-8")
        return (
            f"# Serves {files.name} version {files.version}, written by `ame image dockerfile`\n"
            f"# (ame {__version__}). The model is loaded from the tracking server at start.\n"
            f"FROM python:{files.python}-slim\n"
            "COPY requirements.txt /opt/model/requirements.txt\n"
            f"{copy}"
            "RUN pip install --no-cache-dir -r /opt/model/requirements.txt "
            f"{ame_arg} && rm -rf /opt/ame-src\n"
            f"{_user()}"
            f"EXPOSE {SERVING_PORT}\n"
            f'CMD ["ame", "serve", "{files.name}/{files.version}", "--host", "0.0.0.0", '
            f'"--port", "{SERVING_PORT}"]\n'
        )

    dockerfile = _write_context(out_dir, fill)
    return BuildContext(dockerfile.parent, dockerfile, tag)


def docker_build(context: BuildContext, on_output: Callable[[str], None]) -> None:
    """``docker build -t TAG DIR`` when a Docker daemon answers; one clear line when none does."""
    docker = shutil.which("docker")
    if docker is None:
        raise ImageBuildError(
            f"docker is not installed; build {context.dockerfile} with any OCI image builder"
        )
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=15,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        info = None
    if info is None or info.returncode != 0 or not info.stdout.strip():
        raise ImageBuildError(
            "no Docker daemon answers (is it running, and may this user reach its socket?); "
            f"the context is ready in {context.directory}"
        )
    proc = subprocess.Popen(
        [docker, "build", "-t", context.tag, str(context.directory)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        on_output(line.rstrip("\n"))
    if proc.wait() != 0:
        raise ImageBuildError(f"docker build of {context.tag} failed (exit {proc.returncode})")
