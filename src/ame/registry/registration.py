"""A new version from one source, with the alias policy: what ``ame model register`` does.

The CLI and the web UI both register versions; the rules live here so they
are the same for both: exactly one source (a run, files, or a model some
other package saves, such as an LLM config), ``--path`` only with a run,
``--loader``/``--pip`` only with files, and an alias asked for at registration
is refused *before* anything is written when the version would need a
validation it cannot have had yet. A caller only maps its inputs onto
``pick_source`` and calls ``register_new_version``.

Sources other than runs and files implement ``VersionSource`` in their own
package (``ame.llm.LLMConfigSource``): the registry never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol

from ame.errors import UsageError

if TYPE_CHECKING:
    from ame.registry.facade import Registry
    from ame.registry.records import VersionRecord


@dataclass(frozen=True)
class SavedModel:
    """A model saved (logged) in the store, not yet a version: its URI and its tags."""

    model_uri: str
    tags: dict[str, str] = field(default_factory=dict)


class VersionSource(Protocol):
    """Something a version can be made from; ``save`` logs it and says where it is."""

    def save(self, registry: Registry) -> SavedModel:
        """Log (or find) the model in ``registry``'s store and return where it is."""
        ...


@dataclass(frozen=True)
class RunSource:
    """The model a run logged (the one named ``artifact_path`` if it logged several)."""

    run_id: str
    artifact_path: Optional[str] = None

    def save(self, registry: Registry) -> SavedModel:
        """The run's model as it is: nothing new is logged."""
        from ame.registry.sources import run_model

        source = run_model(registry.client, self.run_id, self.artifact_path)
        return SavedModel(source.source, {"ame.source": "run"})


@dataclass(frozen=True)
class FilesSource:
    """Plain files and folders, turned into a model at load time by a hook."""

    paths: tuple[Path, ...]
    loader: Optional[str] = None
    pip_requirements: tuple[str, ...] = ()

    def save(self, registry: Registry) -> SavedModel:
        """Log the files as one pyfunc model (checked before anything is logged)."""
        from ame.registry.files import FilesSaver, check_sources

        sources = check_sources(self.paths)
        saver = FilesSaver(
            loader=self.loader,
            store=registry.store,
            pip_requirements=list(self.pip_requirements) or None,
        )
        info = saver.save(sources)
        tags = {
            "ame.source": "files",
            "ame.files": ", ".join(s.name for s in sources)[:4000],
            **({"ame.loader": self.loader} if self.loader else {}),
        }
        return SavedModel(info.model_uri, tags)


def pick_source(
    *,
    run: Optional[str] = None,
    artifact_path: Optional[str] = None,
    files: Sequence[Path] = (),
    loader: Optional[str] = None,
    pip_requirements: Sequence[str] = (),
    other: Optional[VersionSource] = None,
) -> VersionSource:
    """The one source a registration names; ``UsageError`` for none, several or a stray option."""
    given = sum((run is not None, bool(files), other is not None))
    if given != 1:
        raise UsageError("give exactly one of --run RUN_ID, --files PATH... or --llm-config FILE")
    if run is None and artifact_path is not None:
        raise UsageError("--path goes with --run")
    if not files and (loader or pip_requirements):
        raise UsageError("--loader and --pip go with --files")
    if run is not None:
        return RunSource(run, artifact_path)
    if other is not None:
        return other
    return FilesSource(tuple(files), loader, tuple(pip_requirements))


def register_new_version(
    registry: Registry,
    name: str,
    source: VersionSource,
    *,
    description: Optional[str] = None,
    tags: Optional[Mapping[str, str]] = None,
    aliases: Sequence[str] = (),
    validation_task: Optional[bool] = None,
    force: bool = False,
) -> VersionRecord:
    """Make a new version of ``name`` from ``source`` and point ``aliases`` at it.

    ``validation_task`` says whether ame.yml gives the model a validation task
    (None: unknown). With one, a new version is unvalidated by definition, so
    an alias is refused up front, unless ``force``: a refused alias must not
    leave a new version behind.
    """
    from ame.registry.facade import UnvalidatedVersionError
    from ame.registry.registers import check_model_name

    check_model_name(name)
    if aliases and validation_task and not force:
        raise UnvalidatedVersionError(
            f"--alias {aliases[0]}: a new version of {name} is not validated yet (ame.yml gives "
            f"it a validation task); run 'ame model validate {name} --version N' and then "
            "'ame model alias', or pass --force"
        )
    saved = source.save(registry)
    version = registry.register(
        name, saved.model_uri, description=description, tags={**saved.tags, **(tags or {})}
    )
    for alias in aliases:
        version = registry.set_alias(
            name, alias, version.version, validation_task=validation_task, force=force
        )
    return version
