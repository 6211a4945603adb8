"""The pyfunc model behind a version made from plain files ("new version from data").

MLflow copies this file into every such model and runs it on load (MLflow's
"models from code"), so a files version loads with plain
``mlflow.pyfunc.load_model`` even where ame is not installed. It depends on
nothing but the standard library and mlflow, and must stay that way.

At load time the files sit in ``context.artifacts["files"]``, wherever the
model was downloaded to, so hooks always receive an absolute path and work
from any working directory. The model object comes from, in order:

1. ``model_config["loader"]`` = ``"module:function"``: ``function(files_dir)``
   returns the model; ``module`` is a ``.py`` among the files or importable;
2. a ``hook.py`` at the top of the files: its ``load(files_dir)`` returns the
   model, and its optional ``predict(model, inputs)`` answers instead of
   ``model.predict``;
3. a single ``*.joblib``/``*.pkl``/``*.pickle`` file, unpickled;
4. nothing: ``predict`` lists the files (path and size), so the version is
   still inspectable.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pickle
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import mlflow
from mlflow.pyfunc import PythonModel

_PICKLES = (".joblib", ".pkl", ".pickle")


def _import_file(path: Path) -> ModuleType:
    # A name unique to the file, so two loaded versions never share a module.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"ame_hook_{path.stem}_{digest}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _import(root: Path, module_name: str) -> ModuleType:
    candidate = root.joinpath(*module_name.split(".")).with_suffix(".py")
    if candidate.is_file():
        return _import_file(candidate)
    return importlib.import_module(module_name)


def _unpickle(path: Path) -> Any:
    try:
        import joblib

        return joblib.load(path)
    except ImportError:
        with path.open("rb") as handle:
            return pickle.load(handle)


class FilesModel(PythonModel):
    """Files plus a loader hook, served as one pyfunc model."""

    def __init__(self) -> None:
        self.root: Optional[Path] = None
        self.model: Any = None
        self.predict_fn: Any = None

    def load_context(self, context: Any) -> None:
        root = Path(context.artifacts["files"]).resolve()
        self.root = root
        config = dict(context.model_config or {})
        loader = str(config.get("loader") or "")
        # Hooks may import their sibling modules, as they would in their own folder.
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        if loader:
            module_name, _, function = loader.partition(":")
            module = _import(root, module_name)
            self.model = getattr(module, function or "load")(str(root))
            self.predict_fn = getattr(module, "predict", None) if not function else None
            return
        hook = root / "hook.py"
        if hook.is_file():
            module = _import_file(hook)
            load = getattr(module, "load", None)
            self.model = load(str(root)) if callable(load) else None
            self.predict_fn = getattr(module, "predict", None)
            return
        pickles = [p for p in root.rglob("*") if p.suffix in _PICKLES and p.is_file()]
        if len(pickles) == 1:
            self.model = _unpickle(pickles[0])

    def _listing(self) -> list[dict[str, Any]]:
        assert self.root is not None
        return [
            {"path": str(p.relative_to(self.root)), "size": p.stat().st_size}
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        ]

    # No type hints here on purpose: MLflow would turn them into an input schema
    # and refuse DataFrames; hooks decide what their inputs are.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        if self.predict_fn is not None:
            return self.predict_fn(self.model, model_input)
        if self.model is None:
            return self._listing()
        return self.model.predict(model_input)


mlflow.models.set_model(FilesModel())
