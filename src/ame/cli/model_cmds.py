"""``ame model ...``: the registry from the command line.

The logic lives in ``ame.registry`` (``Registry``, ``registration``): the
rules of registering and deleting are the library's, so the web UI applies
the same ones. This module maps options onto those calls, asks for
confirmation on a terminal and presents (tables, ``--json``). ``ame model
validate`` belongs to the lifecycle commands and is loaded lazily from there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ame.cli import output
from ame.cli.common import (
    FileOption,
    JsonOption,
    TrackingUriOption,
    console,
    err_console,
    parse_pairs,
    store_for,
)
from ame.cli.common import print_json as _print_json
from ame.cli.lazy import LazyGroup
from ame.errors import ConfirmationRequiredError, UsageError

if TYPE_CHECKING:
    from ame.registry.facade import Registry
    from ame.registry.records import ModelRecord, VersionRecord


class _ModelCommands(LazyGroup):
    # ``ame model validate`` runs the lifecycle's validation task: it lives with
    # the lifecycle commands and is imported only when used.
    lazy = {"validate": "ame.cli.lifecycle_cmds:validate_model"}


model_app = typer.Typer(
    cls=_ModelCommands,
    name="model",
    help="Registered models: list, versions, register, aliases, tags, copy, delete.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


# --- shared helpers -----------------------------------------------------------


def _registry(tracking_uri: Optional[str], file: Optional[Path]) -> Registry:
    from ame.registry.facade import Registry

    return Registry(store_for(tracking_uri, file))


def _when(record: ModelRecord | VersionRecord) -> str:
    stamp = getattr(record, "updated", None) or record.created
    return stamp.strftime("%Y-%m-%d %H:%M") if stamp else ""


def _first_line(text: Optional[str]) -> str:
    return text.splitlines()[0] if text else ""


_MODEL_COLUMNS = ("name", "latest", "aliases", "updated", "description")
_VERSION_COLUMNS = ("version", "aliases", "status", "run", "created", "tags", "description")


def _print_models(models: Iterable[ModelRecord]) -> None:
    """The models table, through the output layer (whole values, piped or not)."""
    rows = [
        (
            m.name,
            m.latest_version or "-",
            ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())),
            _when(m),
            _first_line(m.description),
        )
        for m in models
    ]
    output.table(_MODEL_COLUMNS, rows, styles={"name": "cyan"})


def _print_versions(versions: Iterable[VersionRecord]) -> None:
    """The versions table: every alias that points at a version, the full run id."""
    rows = [
        (
            v.version,
            ", ".join(v.aliases),
            v.status or "",
            v.run_id or "",
            _when(v),
            ", ".join(f"{k}={val}" for k, val in sorted(v.tags.items())),
            _first_line(v.description),
        )
        for v in versions
    ]
    output.table(_VERSION_COLUMNS, rows, styles={"version": "cyan"})


def _page_hint(token: Optional[str]) -> None:
    if token:
        err_console.print(f"[dim]more: --page-token {token}  (or --all)[/dim]")


def _version_json(v: VersionRecord) -> dict[str, Any]:
    return {**v.model_dump(mode="json"), "uri": v.uri}


MaxResultsOption = Annotated[
    int, typer.Option("--max-results", min=1, max=10000, help="Page size.")
]
PageTokenOption = Annotated[
    Optional[str], typer.Option("--page-token", help="Token of the page to show (from a listing).")
]
AllOption = Annotated[bool, typer.Option("--all", help="Walk every page.")]


# --- listing ------------------------------------------------------------------


@model_app.command("list")
def list_models(
    filter_string: Annotated[
        Optional[str],
        typer.Option("--filter", help="MLflow filter, e.g. \"name LIKE 'fraud%'\"."),
    ] = None,
    max_results: MaxResultsOption = 100,
    page_token: PageTokenOption = None,
    all_pages: AllOption = False,
    as_json: JsonOption = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """List registered models with their latest version and aliases.

    Example: [bold]ame model list --filter "name LIKE 'fraud%'" --json[/bold]
    """
    registry = _registry(tracking_uri, file)
    token: Optional[str] = None
    if all_pages:
        models = list(registry.iter_models(filter_string))
    else:
        page = registry.list_models(filter_string, max_results, page_token)
        models, token = page.items, page.next_page_token
    if as_json:
        payload: dict[str, Any] = {"models": [m.model_dump(mode="json") for m in models]}
        if not all_pages:
            payload["next_page_token"] = token
        _print_json(payload)
        return
    if not models:
        console.print("no registered models")
        return
    _print_models(models)
    _page_hint(token)


@model_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    as_json: JsonOption = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Describe a model: description, tags, aliases and its latest versions.

    Example: [bold]ame model show fraud[/bold]
    """
    from rich.markup import escape

    registry = _registry(tracking_uri, file)
    model = registry.get_model(name)
    page = registry.list_versions(name, max_results=20)
    if as_json:
        _print_json(
            {
                **model.model_dump(mode="json"),
                "versions": [_version_json(v) for v in page.items],
                "next_page_token": page.next_page_token,
            }
        )
        return
    console.print(f"[bold cyan]{escape(model.name)}[/bold cyan]")
    if model.description:
        console.print(escape(model.description))
    console.print(f"latest version: {model.latest_version or '-'}")
    for alias, version in sorted(model.aliases.items()):
        console.print(f"alias [bold]{escape(alias)}[/bold] → version {version}")
    for key, value in sorted(model.tags.items()):
        console.print(f"tag {escape(key)}={escape(value)}")
    if page.items:
        _print_versions(page.items)
    _page_hint(page.next_page_token)


@model_app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    filter_string: Annotated[
        Optional[str],
        typer.Option("--filter", help="MLflow filter, e.g. \"tags.validated = 'true'\"."),
    ] = None,
    max_results: MaxResultsOption = 100,
    page_token: PageTokenOption = None,
    all_pages: AllOption = False,
    as_json: JsonOption = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """List the versions of a model, newest first.

    Examples:
      [bold]ame model versions fraud --max-results 10[/bold]
      [bold]ame model versions fraud --filter "tags.validated = 'true'" --json[/bold]
    """
    registry = _registry(tracking_uri, file)
    token: Optional[str] = None
    if all_pages:
        items = list(registry.iter_versions(name, filter_string))
    else:
        page = registry.list_versions(name, max_results, page_token, filter_string)
        items, token = page.items, page.next_page_token
    if as_json:
        payload: dict[str, Any] = {"versions": [_version_json(v) for v in items]}
        if not all_pages:
            payload["next_page_token"] = token
        _print_json(payload)
        return
    if not items:
        if filter_string:
            console.print(f"no version of {name} matches {filter_string}")
        else:
            console.print(f"model {name} has no versions")
        return
    _print_versions(items)
    _page_hint(token)


# --- writing ------------------------------------------------------------------


@model_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The new model's name.")],
    description: Annotated[Optional[str], typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str], typer.Option("--tag", help="KEY=VALUE, repeatable.")] = [],  # noqa: B006
    as_json: JsonOption = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Create an empty registered model (register adds versions, creating it if needed).

    Example: [bold]ame model create fraud -d "Card fraud classifier" --tag team=risk[/bold]
    """
    model = _registry(tracking_uri, file).create_model(name, description, parse_pairs(tag, "tag"))
    if as_json:
        _print_json(model.model_dump(mode="json"))
        return
    console.print(f"created model {model.name}")


@model_app.command("register")
def register_version(
    name: Annotated[str, typer.Argument(help="The registered model (created if needed).")],
    paths: Annotated[
        Optional[list[Path]],
        typer.Argument(help="More files or folders after --files.", show_default=False),
    ] = None,
    run: Annotated[
        Optional[str], typer.Option("--run", help="A run whose logged model becomes the version.")
    ] = None,
    path: Annotated[
        Optional[str],
        typer.Option("--path", help="With --run: the model's name in the run, if it has several."),
    ] = None,
    files: Annotated[
        Optional[list[Path]],
        typer.Option("--files", help="Files or folders that become the version (repeatable)."),
    ] = None,
    loader: Annotated[
        Optional[str],
        typer.Option(
            "--loader", help="With --files: MODULE:FUNCTION returning the model from its folder."
        ),
    ] = None,
    pip: Annotated[
        Optional[list[str]],
        typer.Option("--pip", help="With --files: pip requirements (skips inference)."),
    ] = None,
    llm_config: Annotated[
        Optional[Path],
        typer.Option(
            "--llm-config",
            help="A chat-model JSON config (OpenAI/LiteLLM-compatible endpoint); "
            "a literal api_key in it is stripped, never stored.",
        ),
    ] = None,
    description: Annotated[Optional[str], typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str], typer.Option("--tag", help="KEY=VALUE, repeatable.")] = [],  # noqa: B006
    alias: Annotated[
        list[str], typer.Option("--alias", help="Alias to point at the new version.")
    ] = [],  # noqa: B006
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="With --alias: point it at the new version although it is unvalidated."
        ),
    ] = False,
    as_json: JsonOption = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Make a new version from a training run, from plain files and folders, or an LLM config.

    With --files, the files become the version's artifacts; a hook.py among them
    (load(path) -> model, optional predict(model, inputs)) or --loader MODULE:FUNCTION
    turns them into a model at load time.

    Examples:
      [bold]ame model register fraud --run 3f2a9c... -d "weekly retrain"[/bold]
      [bold]ame model register stock --files models/ hooks/ hook.py --tag source=upload[/bold]
      [bold]ame model register assistant --llm-config config.json[/bold]
    """
    from ame.registry.registration import pick_source, register_new_version

    other = None
    if llm_config is not None:
        from ame.llm import LLMConfigSource

        other = LLMConfigSource(llm_config)
    source = pick_source(
        run=run,
        artifact_path=path,
        files=[*(files or []), *(paths or [])],
        loader=loader,
        pip_requirements=pip or (),
        other=other,
    )
    registry = _registry(tracking_uri, file)
    with err_console.status(f"registering a new version of {name}..."):
        version = register_new_version(
            registry,
            name,
            source,
            description=description,
            tags=parse_pairs(tag, "tag"),
            aliases=alias,
            validation_task=_has_validation_task(name, file) if alias else None,
            force=force,
        )
    for moved in alias:
        _follow_on_cluster(file, name, moved, str(version.version), registry)
    if as_json:
        _print_json(_version_json(version))
        return
    console.print(f"registered {version.name} version {version.version}  ({version.uri})")


def _follow_on_cluster(
    file: Optional[Path], name: str, alias: str, version: str, registry: Registry
) -> None:
    """A Kubernetes Deployment pins a version: one that follows ``name@alias`` is re-applied."""
    from ame.backends.kubernetes.follow import follow_alias
    from ame.cli.render_cmds import project_or_none

    done = follow_alias(project_or_none(file), name, alias, version, registry.store.tracking_uri)
    if done:
        err_console.print(done, highlight=False, markup=False)


@model_app.command("describe")
def describe(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    text: Annotated[str, typer.Argument(help="The new description.")],
    version: Annotated[
        Optional[str], typer.Option("--version", "-v", help="Describe this version instead.")
    ] = None,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Set the description of a model, or of one version with --version.

    Example: [bold]ame model describe fraud "trained on 2024 data" --version 3[/bold]
    """
    registry = _registry(tracking_uri, file)
    if version is None:
        registry.set_model_description(name, text)
        console.print(f"described model {name}")
    else:
        registry.set_version_description(name, version, text)
        console.print(f"described {name} version {version}")


@model_app.command("alias")
def alias(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
    version: Annotated[
        Optional[str], typer.Argument(help="The version the alias points at (moved if set).")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Move it even to a version whose validation is pending or failed."
        ),
    ] = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Point an alias at a version (moving it if it exists), or remove it with --delete.

    A version whose validation is pending or failed is refused without --force
    (models with no validation task in ame.yml are exempt).

    Examples:
      [bold]ame model alias fraud champion 3[/bold]
      [bold]ame model alias fraud champion --delete[/bold]
    """
    registry = _registry(tracking_uri, file)
    if delete:
        if version is not None:
            raise UsageError("--delete takes no VERSION")
        registry.delete_alias(name, alias_name)
        console.print(f"deleted alias {name}@{alias_name}")
        return
    if version is None:
        raise UsageError("give the VERSION the alias points at (or --delete)")
    registry.set_alias(
        name, alias_name, version, validation_task=_has_validation_task(name, file), force=force
    )
    console.print(f"{name}@{alias_name} → version {version}")
    _follow_on_cluster(file, name, alias_name, version, registry)


def _has_validation_task(name: str, file: Optional[Path]) -> Optional[bool]:
    """The alias policy's ame.yml input (``ame.registry.alias_inputs``; the UI asks it too)."""
    from ame.registry.alias_inputs import has_validation_task

    return has_validation_task(name, file)


@model_app.command("tag")
def tag(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[str, typer.Argument(help="The version to tag.")],
    pairs: Annotated[
        Optional[list[str]], typer.Argument(metavar="KEY=VALUE...", show_default=False)
    ] = None,
    delete: Annotated[
        list[str], typer.Option("--delete", help="Remove this tag (repeatable).")
    ] = [],  # noqa: B006
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Set (or --delete) tags on a version.

    Example: [bold]ame model tag fraud 3 validated=true owner=risk[/bold]
    """
    if not pairs and not delete:
        raise UsageError("give KEY=VALUE pairs to set or --delete KEY")
    registry = _registry(tracking_uri, file)
    tags = parse_pairs(pairs or [], "tag")
    if tags:
        registry.set_version_tags(name, version, tags)
    for key in delete:
        registry.delete_version_tag(name, version, key)
    console.print(f"tagged {name} version {version}")


@model_app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="The version to copy: NAME/VERSION or NAME@ALIAS.")],
    destination: Annotated[str, typer.Argument(help="The model that gets a new version.")],
    as_json: JsonOption = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Copy a version to another model (promote staging to prod, say).

    Example: [bold]ame model copy fraud-staging@champion fraud-prod[/bold]
    """
    version = _registry(tracking_uri, file).copy_version(source, destination)
    if as_json:
        _print_json(_version_json(version))
        return
    console.print(f"copied {source} to {version.name} version {version.version}")


def _confirm(yes: bool) -> Any:
    """The ``confirm`` of ``Registry.delete``: yes with --yes, else a prompt on a terminal."""

    def ask(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise ConfirmationRequiredError(f"{question} needs --yes when not run interactively")
        return typer.confirm(f"{question}?", default=False)

    return ask


@model_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[
        Optional[str], typer.Option("--version", "-v", help="Delete only this version.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Delete even if an alias or a deployment uses it (asks no backend).",
        ),
    ] = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Delete a version, or a whole model with all its versions.

    Refused while an alias or a deployment on any configured backend (local,
    and Ray or Kubernetes when ame.yml or the shell configures them) uses it, or
    while one of those backends cannot be asked (unless --force); asks for
    confirmation unless --yes.

    Examples:
      [bold]ame model delete fraud --version 2 --yes[/bold]
      [bold]ame model delete fraud --yes --force[/bold]
    """
    from ame.backends.select import deployment_users
    from ame.cli.backend_cmds import load_optional_project

    registry = _registry(tracking_uri, file)
    project = load_optional_project(file)
    # every configured backend is asked whether it serves the version; one that
    # cannot be asked refuses the delete (one line) unless --force
    in_use = deployment_users(project, project.root if project else None, tracking_uri)
    if not registry.delete(name, version, force=force, confirm=_confirm(yes), in_use=in_use):
        console.print("nothing deleted")
        raise typer.Exit(1)
    console.print(f"deleted {name} version {version}" if version else f"deleted model {name}")
