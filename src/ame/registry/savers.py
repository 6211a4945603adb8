"""Savers: log a model into the store, as MLflow does, typed and with clear errors.

``Saver`` is the abstract contract (``save(model, signature, input_example) ->
ModelInfo``). ``CustomSaver`` logs a ``mlflow.pyfunc.PythonModel`` (optionally
with a JSON config file as an artifact, which is how chat models carry their
settings); ``BuiltinSaver`` logs through a native flavor (``mlflow.sklearn``,
``mlflow.xgboost``...). Both log inside the caller's active run when there is
one, else in a new run of the project's experiment, and hold the embedded
store's write lock so concurrent savers never collide.
"""

from __future__ import annotations

import abc
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

from ame.errors import AmeError, UnreadableFilesError, UnsupportedFlavorError
from ame.registry.errors import SaveError

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from ame.registry.store import Store

# Flavors MLflow ships a module for; shown when an unknown one is asked for.
KNOWN_FLAVORS = (
    "sklearn",
    "xgboost",
    "lightgbm",
    "catboost",
    "statsmodels",
    "pytorch",
    "tensorflow",
    "keras",
    "onnx",
    "spacy",
    "prophet",
    "pmdarima",
    "h2o",
    "spark",
    "transformers",
    "sentence_transformers",
    "pyfunc",
)


def flavor_module(flavor: str) -> Any:
    """``mlflow.<flavor>``, or ``UnsupportedFlavorError`` listing valid flavors."""
    valid = ", ".join(KNOWN_FLAVORS)
    if not flavor.isidentifier():
        raise UnsupportedFlavorError(f"unsupported flavor '{flavor}' (valid: {valid})")
    try:
        module = importlib.import_module(f"mlflow.{flavor}")
    except ImportError as exc:
        raise UnsupportedFlavorError(
            f"unsupported flavor '{flavor}': {exc} (valid: {valid})"
        ) from None
    if not (hasattr(module, "log_model") and hasattr(module, "load_model")):
        raise UnsupportedFlavorError(f"unsupported flavor '{flavor}' (valid: {valid})")
    return module


class Saver(abc.ABC):
    """Save a model into the MLflow store and describe it with a ``ModelInfo``.

    ``path`` is the model's name inside its run (``log_model(name=path)``).
    ``pip_requirements`` skips MLflow's requirement inference (a subprocess
    that can take seconds) when the caller already knows them.
    """

    KIND: ClassVar[str] = "Saver"

    def __init__(
        self,
        path: str = "model",
        config_file: Optional[str] = None,
        *,
        store: Optional[Store] = None,
        pip_requirements: Optional[list[str]] = None,
        extra_pip_requirements: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
    ) -> None:
        if not path or path.startswith("/") or ".." in Path(path).parts:
            raise SaveError(f"invalid model path '{path}': use a relative name such as 'model'")
        self.path = path
        self.config_file = config_file
        self.store = store
        self.pip_requirements = pip_requirements
        self.extra_pip_requirements = extra_pip_requirements
        self.metadata = metadata

    @abc.abstractmethod
    def save(self, model: Any, signature: Any = None, input_example: Any = None) -> ModelInfo:
        """Log ``model`` with its signature and input example; return MLflow's ``ModelInfo``."""

    @staticmethod
    def check_schema(signature: Any, input_example: Any) -> None:
        """Refuse a signature that is not one, or an input example that contradicts it.

        MLflow itself fails on a wrong signature with an ``AttributeError`` from
        deep inside, and only *warns* when the example does not fit the
        signature, which leaves a version whose documented input is wrong.
        """
        if signature is None:
            return
        from mlflow.models import ModelSignature

        if not isinstance(signature, ModelSignature):
            raise SaveError(
                f"signature must be an mlflow.models.ModelSignature, got "
                f"{type(signature).__name__} (build one with mlflow.models.infer_signature)"
            )
        if input_example is None or signature.inputs is None:
            return
        from mlflow.exceptions import MlflowException
        from mlflow.models import validate_schema

        try:
            validate_schema(input_example, signature.inputs)
        except MlflowException as exc:
            first = exc.message.strip().splitlines()[0] if exc.message else str(exc)
            raise SaveError(f"the input example does not match the signature: {first}") from None

    def _common_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.pip_requirements is not None:
            kwargs["pip_requirements"] = self.pip_requirements
        if self.extra_pip_requirements is not None:
            kwargs["extra_pip_requirements"] = self.extra_pip_requirements
        if self.metadata is not None:
            kwargs["metadata"] = self.metadata
        return kwargs

    def _log(self, log: Callable[[], ModelInfo]) -> ModelInfo:
        """Run ``log`` inside the save run, holding the store's write lock."""
        from mlflow.exceptions import MlflowException

        from ame.registry.locking import write_lock
        from ame.registry.runs import saving_run
        from ame.registry.store import resolve_store

        store = self.store or resolve_store()
        with saving_run(store), write_lock(store):
            try:
                return log()
            except AmeError:
                raise
            except MlflowException as exc:
                raise SaveError(f"could not save the model: {exc.message}") from exc
            except Exception as exc:  # a flavor refusing the object it was given
                raise SaveError(f"could not save the model: {type(exc).__name__}: {exc}") from exc


ADAPTERS_GROUP = "ame.registry.adapters"


class _ChatModelAdapter:
    """``CustomSaver.Adapter``: the seed's name for ame's chat-model adapter.

    The seed places the LiteLLM/OpenAI-compatible client adapter under
    ``CustomSaver``; it is ``ame.llm.model.ChatModel`` (a ``PythonModel`` whose
    ``__init__`` builds the client, ``load_context`` reads the JSON config and
    ``predict`` answers). The registry sits below ``ame.llm`` in the layer table
    and never imports it: ``ame.llm`` registers the class as the entry point
    ``CustomSaver`` in the ``ame.registry.adapters`` group (pyproject.toml), found
    here on first access, so importing the registry never imports openai either.
    """

    def __get__(self, instance: object, owner: Optional[type] = None) -> type[Any]:
        from importlib.metadata import entry_points

        for entry in entry_points(group=ADAPTERS_GROUP, name="CustomSaver"):
            adapter: type[Any] = entry.load()
            return adapter
        raise AttributeError(
            f"no chat-model adapter is installed (entry point 'CustomSaver' in {ADAPTERS_GROUP})"
        )


class CustomSaver(Saver):
    """Save a ``mlflow.pyfunc.PythonModel`` (or a models-from-code file) as a pyfunc model.

    ``config_file``, when given, is logged as the artifact ``config`` so that the
    model's ``load_context`` finds it in ``context.artifacts["config"]``.
    ``model_config`` (a dict) is stored with the model and reaches
    ``context.model_config``; a loader may override it at load time
    (``CustomLoader().load(uri, model_config=...)``).

    ``CustomSaver.Adapter`` is the chat-model adapter (``ame.llm.model.ChatModel``):
    ``CustomSaver(config_file="config.json").save(CustomSaver.Adapter(config))``.
    """

    KIND: ClassVar[Literal["CustomSaver"]] = "CustomSaver"
    Adapter: ClassVar[_ChatModelAdapter] = _ChatModelAdapter()

    def __init__(
        self,
        path: str = "model",
        config_file: Optional[str] = None,
        *,
        model_config: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(path=path, config_file=config_file, **kwargs)
        self.model_config = model_config

    def save(self, model: Any, signature: Any = None, input_example: Any = None) -> ModelInfo:
        """Log ``model`` through ``mlflow.pyfunc.log_model``."""
        import mlflow
        from mlflow.pyfunc import PythonModel

        python_model: Any = model
        if isinstance(model, (str, Path)):
            if not Path(model).is_file():
                raise UnreadableFilesError(f"model code file '{model}' does not exist")
            python_model = str(Path(model).resolve())
        elif not isinstance(model, PythonModel):
            raise SaveError(
                f"CustomSaver saves an mlflow.pyfunc.PythonModel, got {type(model).__name__}; "
                "use BuiltinSaver(flavor=...) for sklearn, xgboost and other native models"
            )
        artifacts = None
        if self.config_file is not None:
            config = Path(self.config_file)
            if not config.is_file() or not os.access(config, os.R_OK):
                raise UnreadableFilesError(f"config file '{self.config_file}' cannot be read")
            artifacts = {"config": str(config.resolve())}
        self.check_schema(signature, input_example)
        kwargs = self._common_kwargs()
        if self.model_config is not None:
            kwargs["model_config"] = self.model_config
        return self._log(
            lambda: mlflow.pyfunc.log_model(
                name=self.path,
                python_model=python_model,
                signature=signature,
                input_example=input_example,
                artifacts=artifacts,
                **kwargs,
            )
        )


class BuiltinSaver(Saver):
    """Save a native model through ``mlflow.<flavor>.log_model`` (sklearn by default)."""

    KIND: ClassVar[Literal["BuiltinSaver"]] = "BuiltinSaver"

    def __init__(self, flavor: str = "sklearn", path: str = "model", **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self.flavor = flavor
        self._module = flavor_module(flavor)

    def save(self, model: Any, signature: Any = None, input_example: Any = None) -> ModelInfo:
        """Log ``model`` through the flavor's own ``log_model``."""
        self.check_schema(signature, input_example)
        kwargs = self._common_kwargs()
        return self._log(
            lambda: self._module.log_model(
                model,
                name=self.path,
                signature=signature,
                input_example=input_example,
                **kwargs,
            )
        )
