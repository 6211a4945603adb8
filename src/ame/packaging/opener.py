"""Opening a package into a model that predicts: decrypt, load, forget the plaintext.

The decrypted files exist only in a private directory (mode 0700, files 0600)
created for this one load, on ``/dev/shm`` (memory, never written to a disk)
when it exists, and removed before ``open_package`` returns, whether loading
worked or not. A process killed while loading cannot remove it: the
next package command does (``ame.packaging.scratch``). Models must therefore
read their files while loading (MLflow's flavors and
``PythonModel.load_context`` do), and hooks at import time.
``AME_PACKAGE_TMPDIR`` chooses another parent directory.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from ame.errors import PackageError
from ame.packaging.keys import Secret, decode_key, read_key_file, secret_from_env
from ame.packaging.manifest import Manifest
from ame.packaging.reader import PackageReader
from ame.packaging.scratch import TMPDIR_ENV, make_private_dir, sweep_stale, temp_root

__all__ = ["TMPDIR_ENV", "PackagedModel", "make_secret", "open_package", "temp_root"]

log = logging.getLogger(__name__)

def _load_hook(path: Path, function: str) -> Any:
    """Import a hook file under a unique module name and return its ``function``."""
    name = f"ame_package_hook_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PackageError(f"cannot import hook {path.name}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    # Hooks may import helper modules shipped beside them in hooks/.
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PackageError(f"hook hooks/{path.name} failed to import: {exc}") from exc
    finally:
        sys.path.remove(str(path.parent))
    hook = getattr(module, function, None)
    if not callable(hook):
        raise PackageError(f"hook hooks/{path.name} defines no function {function}(...)")
    return hook


def _forget_paths_under(workdir: Path) -> None:
    """Drop ``sys.path`` entries and module cache keys that point into ``workdir``.

    MLflow puts a model's ``code/`` directory on ``sys.path`` and hooks import
    helpers from ``hooks/``; once the directory is gone those entries only
    mislead later imports (another package's ``helper`` module must not
    resolve to this one's). Loaded modules keep working: their objects are
    referenced by the model and the hooks, not looked up again.
    """
    prefix = str(workdir.resolve())
    sys.path[:] = [p for p in sys.path if not os.path.abspath(p or ".").startswith(prefix)]
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str) and os.path.abspath(origin).startswith(prefix):
            del sys.modules[name]


class PackagedModel:
    """A model opened from a package: MLflow's pyfunc interface with the package's hooks.

    ``predict`` runs ``hooks/pre.py:preprocess`` on the input, the model, then
    ``hooks/post.py:postprocess`` on the output. ``metadata`` is the inner
    model's MLflow ``ModelMetadata`` (with its signature).
    """

    def __init__(self, model: Any, manifest: Manifest, pre: Any = None, post: Any = None) -> None:
        self._model = model
        self.manifest = manifest
        # A plain attribute (not a property): the serving stack's Predictor
        # protocol declares ``metadata`` as a settable variable.
        self.metadata: Any = model.metadata
        self._pre = pre
        self._post = post

    @property
    def name(self) -> str:
        return self.manifest.model.name

    @property
    def version(self) -> str:
        return self.manifest.model.version

    @property
    def key_id(self) -> Optional[str]:
        return self.manifest.encryption.key_id if self.manifest.encryption else None

    def _loaded(self) -> Any:
        if self._model is None:
            raise PackageError("the packaged model was closed")
        return self._model

    def predict(self, data: Any, params: Optional[dict[str, Any]] = None) -> Any:
        model = self._loaded()
        if self._pre is not None:
            data = self._pre(data)
        result = model.predict(data, params=params) if params is not None else model.predict(data)
        if self._post is not None:
            result = self._post(result)
        return result

    def unwrap_python_model(self) -> Any:
        """The inner pyfunc's own model object (for callers that need flavor specifics)."""
        return self._loaded().unwrap_python_model()

    def close(self) -> None:
        """Drop the model; the decrypted files were already removed when it was opened."""
        self._model = None
        self._pre = self._post = None

    def __enter__(self) -> PackagedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_secret(
    key: Optional[bytes | str] = None,
    key_file: Optional[str | Path] = None,
    passphrase: Optional[str] = None,
) -> Optional[Secret]:
    """One ``Secret`` from exactly one of the three ways to give it (None if none)."""
    given = [x for x in (key, key_file, passphrase) if x is not None]
    if len(given) > 1:
        raise PackageError("give only one of key, key_file and passphrase")
    if key is not None:
        return Secret(key=decode_key(key.encode("utf-8") if isinstance(key, str) else key))
    if key_file is not None:
        return Secret(key=read_key_file(Path(key_file)))
    if passphrase is not None:
        return Secret(passphrase=passphrase)
    return None


def open_package(
    path: str | Path,
    *,
    key: Optional[bytes | str] = None,
    key_file: Optional[str | Path] = None,
    passphrase: Optional[str] = None,
    secret: Optional[Secret] = None,
) -> PackagedModel:
    """Open the package at ``path`` and load its model, ready to ``predict``.

    The key comes from ``key`` (32 bytes, or hex/base64 text), ``key_file``,
    ``passphrase`` or ``secret``; when none is given the environment is tried
    (``AME_PACKAGE_KEY_FILE``, ``AME_PACKAGE_KEY``, ``AME_PACKAGE_PASSPHRASE``).
    Raises ``WrongKeyError`` for a key that does not match the package's key id
    and ``PackageCorruptError`` for anything that fails authentication.
    """
    import mlflow.pyfunc

    secret = secret or make_secret(key, key_file, passphrase)
    with PackageReader(path) as reader:
        if secret is None and reader.manifest.encrypted:
            secret = secret_from_env()
        reader.unlock(secret)
        manifest = reader.manifest
        # Plaintext a killed process left behind goes before any more is written.
        sweep_stale()
        workdir = make_private_dir()
        try:
            reader.extract(workdir)
            try:
                model = mlflow.pyfunc.load_model(str(workdir / "models"))
            except Exception as exc:  # MLflow raises many kinds; say which package failed
                raise PackageError(f"could not load the model in package {path}: {exc}") from exc
            pre = (
                _load_hook(workdir / manifest.hooks.pre, "preprocess")
                if manifest.hooks.pre
                else None
            )
            post = (
                _load_hook(workdir / manifest.hooks.post, "postprocess")
                if manifest.hooks.post
                else None
            )
        finally:
            _forget_paths_under(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            if workdir.exists():  # pragma: no cover - only if the OS refused the removal
                log.error("could not remove decrypted files in %s", workdir)
    log.info("opened package %s (%s/%s)", path, manifest.model.name, manifest.model.version)
    return PackagedModel(model, manifest, pre, post)
