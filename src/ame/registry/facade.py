"""``Registry``: every version-management operation on one store, typed.

This is what the CLI and the lifecycle call. It returns small records
(``ModelRecord``, ``VersionRecord``, ``Page``) instead of MLflow entities,
raises ``ame.errors`` with the names that do exist, holds the embedded store's
write lock around every write, and refuses to delete what an alias or a live
deployment still points at unless told to ``force``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from ame.errors import AlreadyExistsError, RegistryError, VersionInUseError
from ame.registry.errors import is_not_found, translate, translates_mlflow_errors
from ame.registry.paging import iter_pages
from ame.registry.records import ModelRecord, Page, VersionRecord, alias_table
from ame.registry.registers import check_model_name, register_version
from ame.registry.resolve import (
    client_for,
    get_alias,
    get_model,
    get_version,
    quote,
    resolve_version,
)
from ame.registry.uris import ModelRef, parse_model_ref

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ame.registry.store import Store

# ``in_use(name, version)``: the reasons deployments still use that version
# (any version of the model when None); given by the caller, see ``users``.
InUse = Callable[[str, Optional[str]], list[str]]

logger = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_PAGE = 100


VALIDATION_TAG = "ame.validation"
# Validation outcomes an alias may point at; ``ame.lifecycle`` writes the tag.
VALIDATED = ("passed", "skipped")


def _str(tags: Optional[Mapping[str, Any]]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


class UnvalidatedVersionError(RegistryError):
    """An alias was asked to move to a version that has not passed validation."""


def check_alias_target(
    name: str, version: str, tags: Mapping[str, str], needs_validation: bool
) -> None:
    """Refuse, in one line, an alias move to a version that has not passed validation."""
    state = tags.get(VALIDATION_TAG)
    if state in VALIDATED or (state is None and not needs_validation):
        return
    how = {
        None: "has not been validated",
        "pending": "is still pending validation (or its validation was interrupted)",
        "failed": "failed validation",
        "killed": "was never validated: ame was killed during its validation",
    }.get(state, f"has validation state '{state}'")
    raise UnvalidatedVersionError(
        f"refusing to move an alias of {name} to version {version}: it {how}; run "
        f"'ame model validate {name} --version {version}', or pass --force to move it anyway"
    )


@translates_mlflow_errors
class Registry:
    """The model registry of ``store`` (the resolved default store when omitted).

    Every public method raises ``ame.errors`` only (``translates_mlflow_errors``):
    MLflow's own exceptions are translated by their error code, once, here.
    """

    def __init__(self, store: Optional[Store] = None) -> None:
        from ame.registry.store import resolve_store

        self.store = store or resolve_store()

    @cached_property
    def client(self) -> MlflowClient:
        """The MLflow client of the store (the schema is created safely on first use)."""
        return client_for(self.store)

    # --- writes ------------------------------------------------------------

    def _write(self, fn: Callable[[], T]) -> T:
        from ame.registry.locking import locked_write

        return locked_write(self.store, fn)

    # --- models ------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> ModelRecord:
        """Create an empty registered model; ``RegistryError`` if it exists."""
        check_model_name(name)
        str_tags = {str(k): str(v) for k, v in (tags or {}).items()}

        def _create() -> Any:
            try:
                self.client.get_registered_model(name)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
                return self.client.create_registered_model(
                    name, tags=str_tags or None, description=description
                )
            raise AlreadyExistsError(f"model '{name}' already exists")

        _ = self._write(_create)
        return self.get_model(name)

    def get_model(self, name: str) -> ModelRecord:
        """Describe model ``name``; ``ModelNotFoundError`` with close names if unknown."""
        return ModelRecord.from_mlflow(get_model(self.client, name))

    def list_models(
        self,
        filter_string: Optional[str] = None,
        max_results: int = DEFAULT_PAGE,
        page_token: Optional[str] = None,
    ) -> Page[ModelRecord]:
        """One page of registered models, by name (``filter_string``: ``name LIKE 'fr%'``)."""
        page = self.client.search_registered_models(
            filter_string=filter_string,
            max_results=max_results,
            order_by=["name ASC"],
            page_token=page_token,
        )
        return Page[ModelRecord](
            items=[ModelRecord.from_mlflow(rm) for rm in page], next_page_token=page.token or None
        )

    def iter_models(self, filter_string: Optional[str] = None) -> Iterator[ModelRecord]:
        """Every registered model, page after page."""
        yield from iter_pages(lambda token: self.list_models(filter_string, DEFAULT_PAGE, token))

    def set_model_description(self, name: str, description: str) -> ModelRecord:
        """Set the model's description."""
        get_model(self.client, name)
        self._write(lambda: self.client.update_registered_model(name, description=description))
        return self.get_model(name)

    def set_model_tags(self, name: str, tags: Mapping[str, Any]) -> ModelRecord:
        """Set tags on the model."""
        get_model(self.client, name)
        for key, value in tags.items():
            self._write(partial(self.client.set_registered_model_tag, name, key, str(value)))
        return self.get_model(name)

    def delete_model_tag(self, name: str, key: str) -> ModelRecord:
        """Remove a tag from the model."""
        get_model(self.client, name)
        self._write(lambda: self.client.delete_registered_model_tag(name, key))
        return self.get_model(name)

    # --- versions ----------------------------------------------------------

    def list_versions(
        self,
        name: str,
        max_results: int = DEFAULT_PAGE,
        page_token: Optional[str] = None,
        filter_string: Optional[str] = None,
    ) -> Page[VersionRecord]:
        """One page of the versions of ``name``, newest first.

        ``filter_string`` narrows them with MLflow's filter syntax
        (``tags.validated = 'true'``, ``run_id = '...'``); it is ANDed with the name.
        """
        model = get_model(self.client, name)
        where = f"name = {quote(name)}"
        if filter_string and filter_string.strip():
            where += f" AND {filter_string.strip()}"
        return self.search_versions(where, max_results, page_token, _models={name: model})

    def iter_versions(
        self, name: str, filter_string: Optional[str] = None
    ) -> Iterator[VersionRecord]:
        """Every version of ``name`` (matching ``filter_string``), newest first."""
        yield from iter_pages(
            lambda token: self.list_versions(name, DEFAULT_PAGE, token, filter_string)
        )

    def search_versions(
        self,
        filter_string: Optional[str] = None,
        max_results: int = DEFAULT_PAGE,
        page_token: Optional[str] = None,
        *,
        _models: Optional[dict[str, Any]] = None,
    ) -> Page[VersionRecord]:
        """One page of versions matching an MLflow filter (``tags.stage = 'x'``...).

        MLflow's search returns versions without aliases; they are read from
        each registered model on the page (one call per model, ``_models``
        holding the ones the caller fetched already).
        """
        page = self.client.search_model_versions(
            filter_string=filter_string,
            max_results=max_results,
            order_by=["name ASC", "version_number DESC"],
            page_token=page_token,
        )
        models = dict(_models or {})
        tables: dict[str, dict[str, list[str]]] = {}
        items = []
        for mv in page:
            if mv.name not in tables:
                rm = models.get(mv.name) or get_model(self.client, mv.name)
                tables[mv.name] = alias_table(rm)
            items.append(VersionRecord.from_mlflow(mv, tables[mv.name].get(str(mv.version), [])))
        return Page[VersionRecord](items=items, next_page_token=page.token or None)

    def get_version(self, name: str, version: str | int) -> VersionRecord:
        """Version ``version`` of ``name``."""
        return VersionRecord.from_mlflow(get_version(self.client, name, version))

    def resolve(self, ref: str | ModelRef) -> VersionRecord:
        """The version a reference names (``name/3``, ``name@alias``, bare ``name`` = latest)."""
        parsed = parse_model_ref(ref) if isinstance(ref, str) else ref
        if parsed.run_id is not None:
            raise RegistryError(f"'{parsed}' is a run, not a registered version")
        return VersionRecord.from_mlflow(resolve_version(self.client, parsed))

    def register(
        self,
        name: str,
        model_uri: str,
        *,
        description: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
        aliases: Sequence[str] = (),
    ) -> VersionRecord:
        """Create a version of ``name`` from a run, logged model, version or saved-model path."""
        try:
            mv = register_version(
                self.store, name, model_uri, tags=tags, description=description, aliases=aliases
            )
        except Exception as exc:
            err = translate(exc, self.store.tracking_uri)
            if err is None or err is exc:
                raise
            raise type(err)(f"cannot register '{model_uri}' as {name}: {err}") from exc
        return VersionRecord.from_mlflow(mv)

    def register_from_run(
        self,
        name: str,
        run_id: str,
        artifact_path: Optional[str] = None,
        *,
        description: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> VersionRecord:
        """A version from the model a run logged (the one named ``artifact_path`` if several)."""
        from ame.registry.registration import RunSource, register_new_version

        return register_new_version(
            self, name, RunSource(run_id, artifact_path), description=description, tags=_str(tags)
        )

    def register_from_files(
        self,
        name: str,
        paths: Sequence[Path | str],
        *,
        loader: Optional[str] = None,
        description: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
        pip_requirements: Optional[list[str]] = None,
    ) -> VersionRecord:
        """A version whose artifacts are ``paths`` (files and folders), loaded through a hook.

        See ``files_model_code.py`` for how the hook is found. The files are
        checked before anything is logged.
        """
        from ame.registry.registration import FilesSource, register_new_version

        source = FilesSource(tuple(Path(p) for p in paths), loader, tuple(pip_requirements or ()))
        return register_new_version(self, name, source, description=description, tags=_str(tags))

    def set_version_description(
        self, name: str, version: str | int, description: str
    ) -> VersionRecord:
        """Set a version's description."""
        get_version(self.client, name, version)
        self._write(
            lambda: self.client.update_model_version(name, str(version), description=description)
        )
        return self.get_version(name, version)

    def set_version_tags(
        self, name: str, version: str | int, tags: Mapping[str, Any]
    ) -> VersionRecord:
        """Set tags on a version."""
        get_version(self.client, name, version)
        for key, value in tags.items():
            self._write(
                partial(self.client.set_model_version_tag, name, str(version), key, str(value))
            )
        return self.get_version(name, version)

    def delete_version_tag(self, name: str, version: str | int, key: str) -> VersionRecord:
        """Remove a tag from a version."""
        get_version(self.client, name, version)
        self._write(lambda: self.client.delete_model_version_tag(name, str(version), key))
        return self.get_version(name, version)

    # --- aliases -----------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str | int,
        *,
        validation_task: Optional[bool] = None,
        force: bool = False,
    ) -> VersionRecord:
        """Point ``name@alias`` at ``version`` (creating or moving the alias).

        An alias is what deployments follow, so it never moves silently to a
        version whose validation is pending, failed or was killed: that raises
        ``UnvalidatedVersionError`` unless ``force``. ``validation_task`` says
        whether the model has a validation task in ame.yml: ``False`` exempts
        it (there is nothing to wait for), ``True`` also refuses a version that
        was never validated, ``None`` (unknown) judges by the version's tags only.
        """
        parse_model_ref(f"{name}@{alias}")  # the alias must be writable as a reference
        current = get_version(self.client, name, version)
        if not force and validation_task is not False:
            check_alias_target(name, str(version), current.tags, validation_task is True)
        self._write(lambda: self.client.set_registered_model_alias(name, alias, str(version)))
        return self.get_version(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``name@alias``; ``AliasNotFoundError`` if there is none."""
        get_alias(self.client, name, alias)
        self._write(lambda: self.client.delete_registered_model_alias(name, alias))

    # --- deletion ----------------------------------------------------------

    def users(
        self,
        name: str,
        version: Optional[str | int] = None,
        in_use: Optional[InUse] = None,
    ) -> list[str]:
        """What still points at the version (or, without one, at any version of the model).

        Aliases are the registry's own; deployments are not: the registry does
        not know where models run, so ``in_use(name, version)`` is passed in
        from above (``ame.backends.select.deployment_users`` asks every
        configured backend) and its reasons are added. It may raise to say it
        cannot tell (a backend that does not answer): then nothing is deleted.
        """
        model = self.get_model(name)
        reasons = [
            f"alias '{alias}' -> version {target}"
            for alias, target in sorted(model.aliases.items())
            if version is None or target == str(version)
        ]
        if in_use is not None:
            reasons.extend(in_use(name, None if version is None else str(version)))
        return reasons

    def delete_version(
        self,
        name: str,
        version: str | int,
        *,
        force: bool = False,
        in_use: Optional[InUse] = None,
    ) -> None:
        """Delete one version; ``VersionInUseError`` while aliases or deployments use it."""
        self.delete(name, version, force=force, in_use=in_use)

    def delete_model(
        self, name: str, *, force: bool = False, in_use: Optional[InUse] = None
    ) -> None:
        """Delete a model and all its versions; refused while any is in use, unless forced."""
        self.delete(name, force=force, in_use=in_use)

    def delete(
        self,
        name: str,
        version: Optional[str | int] = None,
        *,
        force: bool = False,
        confirm: Optional[Callable[[str], bool]] = None,
        in_use: Optional[InUse] = None,
    ) -> bool:
        """Delete version ``version`` of ``name``, or (without one) the model and all its versions.

        In this order, so nobody is asked about something that cannot go: the
        target must exist, nothing may use it (aliases, and the deployments
        ``in_use`` reports: ``VersionInUseError`` with the reasons; ``force``
        skips the check, ``in_use`` included), then
        ``confirm(question)`` is asked, if given; its False deletes nothing and
        returns False. The CLI passes a prompt, the web UI its form's answer.
        """
        if version is not None:
            get_version(self.client, name, version)
            what, question = f"{name}/{version}", f"delete {name} version {version}"
        else:
            model = self.get_model(name)
            what = f"model '{name}'"
            question = (
                f"delete model {name} and all its versions (latest: {model.latest_version or '0'})"
            )
        reasons = [] if force else self.users(name, version, in_use)
        if reasons:
            raise VersionInUseError(
                f"{what} is in use ({'; '.join(reasons)}); "
                "move or delete those first, or use --force"
            )
        if confirm is not None and not confirm(question):
            return False
        if version is not None:
            self._write(lambda: self.client.delete_model_version(name, str(version)))
        else:
            self._write(lambda: self.client.delete_registered_model(name))
        return True

    # --- copy --------------------------------------------------------------

    def copy_version(self, source: str | ModelRef, destination: str) -> VersionRecord:
        """Copy a version (``name/3``, ``name@alias``...) to a new version of ``destination``.

        This is how a version is promoted across environments (``fraud-staging``
        to ``fraud-prod``): same artifacts, new version, source kept in a tag.
        """
        check_model_name(destination)
        record = self.resolve(source)
        copied = self._write(
            lambda: self.client.copy_model_version(
                f"models:/{record.name}/{record.version}", destination
            )
        )
        try:
            self._write(
                lambda: self.client.set_model_version_tag(
                    destination,
                    str(copied.version),
                    "ame.copied_from",
                    f"{record.name}/{record.version}",
                )
            )
            return self.get_version(destination, copied.version)
        except BaseException:
            # All or nothing: a copy we cannot finish is removed again.
            self._write(lambda: self.client.delete_model_version(destination, str(copied.version)))
            raise
