"""Versions made from plain files and folders (MLSteam's "new version from data").

Several sources (files or folders) are copied side by side into one staging
folder and logged as a pyfunc model whose artifact ``files`` is that folder;
``files_model_code.py`` turns them back into a model at load time through a
loader hook. Every source is checked before anything is logged, so unreadable
input is refused with the paths at fault and nothing half-made is left.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from ame.errors import UnreadableFilesError
from ame.registry.errors import LoaderHookError
from ame.registry.savers import Saver

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

_LOADER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$")
CODE_FILE = Path(__file__).with_name("files_model_code.py")


def check_sources(paths: Sequence[Path | str]) -> list[Path]:
    """Absolute, readable, distinctly named sources; ``UnreadableFilesError`` otherwise."""
    if not paths:
        raise UnreadableFilesError("no files given to make a version from")
    problems: list[str] = []
    resolved: list[Path] = []
    names: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_symlink():
            problems.append(
                f"{raw}: is a symbolic link (to {os.readlink(path)}); ame never follows links "
                "in --files: give the file it points to"
            )
            continue
        if not path.exists():
            problems.append(f"{raw}: does not exist")
            continue
        if not os.access(path, os.R_OK):
            problems.append(f"{raw}: not readable")
            continue
        if path.is_dir():
            problems.extend(_tree_problems(path))
        elif not path.is_file():
            problems.append(f"{raw}: not a regular file or folder")
            continue
        absolute = path.resolve()
        if absolute.name in names:
            problems.append(f"{raw}: same name as {names[absolute.name]}")
            continue
        names[absolute.name] = absolute
        resolved.append(absolute)
    if problems:
        raise UnreadableFilesError("cannot make a version from these files: " + "; ".join(problems))
    return resolved


def _tree_problems(folder: Path) -> list[str]:
    """Links, special files and unreadable entries under ``folder`` (links are not followed).

    A link inside a folder could point anywhere (``/etc/passwd``, a key) and
    would be copied into the version's artifacts for everyone with access to
    the registry to read; a fifo or device would hang the copy. Both are refused.
    """
    problems: list[str] = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            entry = Path(top) / name
            if entry.is_symlink():
                problems.append(
                    f"{entry}: is a symbolic link (to {os.readlink(entry)}); ame never "
                    "follows links in --files: replace it with the file itself"
                )
            elif not (entry.is_dir() or entry.is_file()):
                problems.append(f"{entry}: not a regular file or folder")
            elif not os.access(entry, os.R_OK):
                problems.append(f"{entry}: not readable")
    return problems


def check_loader(loader: Optional[str]) -> Optional[str]:
    """Validate a ``module[:function]`` loader spec."""
    if loader is None or loader == "":
        return None
    if not _LOADER.match(loader):
        raise LoaderHookError(
            f"invalid loader '{loader}': use MODULE:FUNCTION, e.g. hooks.load:load_model"
        )
    return loader


def stage(sources: Sequence[Path], into: Path) -> None:
    """Copy ``sources`` side by side into ``into`` (folders keep their name)."""
    for source in sources:
        target = into / source.name
        try:
            if source.is_dir():
                # symlinks=True: a link that appeared after the check is copied as a
                # link (and refused below), never followed to what it points at.
                shutil.copytree(source, target, symlinks=True)
            else:
                shutil.copy2(source, target, follow_symlinks=False)
        except (OSError, shutil.Error) as exc:
            raise UnreadableFilesError(f"cannot copy {source}: {exc}") from exc
    late = [p for p in _tree_problems(into) if "symbolic link" in p or "regular" in p]
    if late:
        raise UnreadableFilesError("the files changed while copying: " + "; ".join(late))


class FilesSaver(Saver):
    """Log files and folders as one pyfunc model with a loader hook."""

    KIND: ClassVar[str] = "FilesSaver"

    def __init__(self, loader: Optional[str] = None, path: str = "model", **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self.loader = check_loader(loader)

    def save(self, model: Any, signature: Any = None, input_example: Any = None) -> ModelInfo:
        """Log the files ``model`` (a list of paths) as one model."""
        import mlflow

        sources = check_sources(list(model))
        self.check_schema(signature, input_example)
        with tempfile.TemporaryDirectory(prefix="ame-files-") as tmp:
            staged = Path(tmp) / "files"
            staged.mkdir()
            stage(sources, staged)
            config = {"loader": self.loader or "", "sources": [s.name for s in sources]}
            kwargs = self._common_kwargs()
            return self._log(
                lambda: mlflow.pyfunc.log_model(
                    name=self.path,
                    python_model=str(CODE_FILE),
                    artifacts={"files": str(staged)},
                    model_config=config,
                    signature=signature,
                    input_example=input_example,
                    **kwargs,
                )
            )
