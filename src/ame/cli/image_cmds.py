"""``ame image dockerfile`` and ``ame image build``: the images rendered pods run.

A model's serving image (ame plus its version's requirements) or a task's
runner image (Python, ame, uv and the executor's tool). The logic lives in
``ame.backends.kubernetes.image``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ame.cli.common import FileOption, TrackingUriOption

if TYPE_CHECKING:
    from ame.backends.kubernetes.image import BuildContext

image_app = typer.Typer(
    name="image",
    help="Container images for the kubernetes backend: Dockerfiles and docker build.",
    no_args_is_help=True,
)

ModelArg = Annotated[
    Optional[str],
    typer.Argument(
        help="MODEL, MODEL@ALIAS or MODEL/VERSION (default alias: the champion).",
        show_default=False,
    ),
]
TaskOption = Annotated[
    Optional[str],
    typer.Option(
        "--task", help="The runner image of this task instead of a model's.", show_default=False
    ),
]


def _context(
    model: Optional[str],
    task: Optional[str],
    out: Optional[Path],
    file: Optional[Path],
    tracking_uri: Optional[str],
) -> BuildContext:
    from ame.backends.kubernetes import image
    from ame.errors import AmeError, TaskError
    from ame.spec import load_project

    if (model is None) == (task is None):
        raise AmeError("name a MODEL or give --task T (one of them)")
    project = load_project(file)
    if task is not None:
        try:
            spec = project.task(task)
        except KeyError:
            names = ", ".join(t.name for t in project.all_tasks()) or "none"
            raise TaskError(f"no task '{task}' in {project.file} (tasks: {names})") from None
        return image.runner_context(spec, out or Path(project.root) / ".ame" / "images" / task)
    assert model is not None
    from ame.registry.facade import Registry
    from ame.registry.store import resolve_store
    from ame.registry.uris import parse_model_ref

    ref = parse_model_ref(model)
    if ref.name is None:
        raise AmeError(f"{model!r} names no registered model")
    if ref.version is None and ref.alias is None:
        try:
            alias = project.model(ref.name).champion_alias
        except KeyError:
            alias = "champion"
        model = f"{ref.name}@{alias}"
    registry = Registry(resolve_store(tracking_uri, Path(project.root)))
    files = image.model_files(registry, model)
    where = out or Path(project.root) / ".ame" / "images" / f"{files.name}-{files.version}"
    return image.serving_context(files, project.name, where)


@image_app.command("dockerfile")
def dockerfile_cmd(
    model: ModelArg = None,
    task: TaskOption = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "-o", "--output", help="The build context directory to write.", show_default=False
        ),
    ] = None,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Write a Dockerfile and its build context for a model's serving image or a task's runner.

    Example: [bold]ame image dockerfile iris@champion -o build/iris[/bold]
    """
    context = _context(model, task, out, file, tracking_uri)
    typer.echo(str(context.dockerfile))
    typer.echo(f"build it with: docker build -t {context.tag} {context.directory}", err=True)


@image_app.command("build")
def build_cmd(
    model: ModelArg = None,
    task: TaskOption = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "-o", "--output", help="Where to write the build context first.", show_default=False
        ),
    ] = None,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Write the build context, then run docker build (needs a Docker daemon).

    Example: [bold]ame image build --task train_my_model[/bold]
    """
    from ame.backends.kubernetes.image import docker_build

    context = _context(model, task, out, file, tracking_uri)
    docker_build(context, lambda line: typer.echo(line, err=True))
    typer.echo(context.tag)
