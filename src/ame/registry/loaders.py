"""Loaders: any model reference in, an adapter whose ``predict`` returns ``Outputs``.

``CustomLoader`` loads the pyfunc form (every MLflow model has one, and it is
what serving uses); ``BuiltinLoader`` loads the native object of a flavor
(the sklearn estimator itself, say) for code that needs it. Both accept every
reference form of ``ame.registry.uris`` and resolve it first, so a bad name,
version or alias fails with the names that do exist, not a stack trace from
deep inside MLflow.
"""

from __future__ import annotations

import abc
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

from ame.errors import AmeError, RegistryError, UnsupportedFlavorError
from ame.registry.errors import PredictionError, translates
from ame.registry.records import ResolvedVersion
from ame.registry.schemas import OutputMetadata, Outputs, to_frame, to_model_input

if TYPE_CHECKING:
    from ame.registry.store import Store

PYFUNC = "python_function"


@translates
def resolve_model(text: str, store: Optional[Store] = None) -> ResolvedVersion:
    """Resolve a reference (``name@alias``, ``runs:/...``...) against ``store``; activate it."""
    from ame.registry.resolve import client_for, resolve_version
    from ame.registry.sources import run_model
    from ame.registry.store import activate, resolve_store
    from ame.registry.uris import parse_model_ref

    ref = parse_model_ref(text)
    store = store or resolve_store()
    activate(store)
    client = client_for(store)
    if ref.run_id is not None:
        source = run_model(client, ref.run_id, ref.artifact_path)
        return ResolvedVersion(uri=source.source, run_id=ref.run_id)
    return ResolvedVersion.from_mlflow(resolve_version(client, ref), follows=ref.alias)


class Adapter(abc.ABC):
    """A loaded model: ``predict(inputs) -> Outputs``, plus the model object itself."""

    def __init__(self, model: Any, resolved: ResolvedVersion, flavor: str) -> None:
        self.model = model
        self.resolved = resolved
        self.flavor = flavor

    @abc.abstractmethod
    def _predict(self, inputs: Any) -> Any:
        """The model's raw answer."""

    def load_context(self, model_config: Optional[dict[str, Any]] = None) -> Adapter:
        """Load the model again with ``model_config`` overriding the one it was saved with.

        This is how one stored version is run with other settings (a chat
        model's temperature, a files model's options) without registering a
        new version. Only pyfunc models have a ``model_config``; a native
        model (``BuiltinLoader``) refuses with ``UnsupportedFlavorError``.
        Returns the adapter itself, so calls chain.
        """
        raise UnsupportedFlavorError(
            f"{self.describe()} is loaded as a native {self.flavor} model, which takes no "
            "model_config; load it with CustomLoader"
        )

    def predict(self, inputs: Any) -> Outputs:
        """Predict on ``inputs`` (a DataFrame, records, column dict, array or list).

        Any failure of the model becomes a ``PredictionError`` naming the model.
        """
        started = time.perf_counter()
        try:
            raw = self._predict(to_model_input(inputs))
        except Exception as exc:
            raise PredictionError(
                f"{self.describe()} failed to predict: {type(exc).__name__}: {exc}"
            ) from exc
        latency = (time.perf_counter() - started) * 1000
        metadata = OutputMetadata(
            uri=self.resolved.uri,
            flavor=self.flavor,
            name=self.resolved.name,
            version=self.resolved.version,
            run_id=self.resolved.run_id,
            latency_ms=latency,
        )
        return Outputs(predictions=to_frame(raw), metadata=metadata, raw=raw)

    def describe(self) -> str:
        """``name/version`` when registered, else the URI."""
        if self.resolved.name:
            return f"model {self.resolved.name}/{self.resolved.version}"
        return f"model {self.resolved.uri}"


class Loader(abc.ABC):
    """Load a model from the store by reference and wrap it in an adapter."""

    KIND: ClassVar[str] = "Loader"

    def __init__(self, *, store: Optional[Store] = None) -> None:
        self.store = store

    @abc.abstractmethod
    def load(self, uri: str) -> Adapter:
        """Load the model ``uri`` names (any accepted reference form)."""


def _load_error(resolved: ResolvedVersion, exc: Exception) -> RegistryError:
    message = getattr(exc, "message", None) or str(exc)
    if not getattr(exc, "message", None):
        message = f"{type(exc).__name__}: {message}"
    what = f"{resolved.name}/{resolved.version}" if resolved.name else resolved.uri
    return RegistryError(f"cannot load model {what}: {message}")


class CustomLoader(Loader):
    """Load any model in its pyfunc form (custom ``PythonModel``s included)."""

    KIND: ClassVar[Literal["CustomLoader"]] = "CustomLoader"

    class Adapter(Adapter):
        """A ``mlflow.pyfunc.PyFuncModel`` behind ``predict -> Outputs``."""

        def _predict(self, inputs: Any) -> Any:
            return self.model.predict(inputs)

        def load_context(self, model_config: Optional[dict[str, Any]] = None) -> Adapter:
            """Reload the pyfunc model with ``model_config`` (``None``: as it was saved)."""
            self.model = _load_pyfunc(self.resolved, model_config)
            return self

    def load(self, uri: str, model_config: Optional[dict[str, Any]] = None) -> CustomLoader.Adapter:
        """Load ``uri`` with ``mlflow.pyfunc.load_model``.

        ``model_config`` overrides the configuration the model was saved with
        (it reaches the model's ``context.model_config``).
        """
        resolved = resolve_model(uri, self.store)
        model = _load_pyfunc(resolved, model_config)
        flavors = [f for f in model.metadata.flavors if f != PYFUNC]
        return CustomLoader.Adapter(model, resolved, flavors[0] if flavors else PYFUNC)


def _load_pyfunc(resolved: ResolvedVersion, model_config: Optional[dict[str, Any]]) -> Any:
    """``mlflow.pyfunc.load_model`` with MLflow's and the model's own failures as ame errors.

    A custom model's ``load_context`` can raise anything (a missing config
    file, a broken hook); the error names the version instead of leaking a
    traceback from inside MLflow.
    """
    import mlflow

    if model_config is not None and not isinstance(model_config, dict):
        raise RegistryError(f"model_config must be a dict, got {type(model_config).__name__}")
    try:
        return mlflow.pyfunc.load_model(resolved.uri, model_config=model_config)
    except AmeError:  # already typed and readable (a chat model's missing key...)
        raise
    except Exception as exc:
        raise _load_error(resolved, exc) from exc


class BuiltinLoader(Loader):
    """Load the native object of a flavor (``flavor=None``: the model's own native flavor)."""

    KIND: ClassVar[Literal["BuiltinLoader"]] = "BuiltinLoader"

    def __init__(self, flavor: Optional[str] = None, *, store: Optional[Store] = None) -> None:
        super().__init__(store=store)
        self.flavor = flavor

    class Adapter(Adapter):
        """A native model (an sklearn estimator...) behind ``predict -> Outputs``."""

        def _predict(self, inputs: Any) -> Any:
            return self.model.predict(inputs)

    def load(self, uri: str) -> BuiltinLoader.Adapter:
        """Load ``uri`` with ``mlflow.<flavor>.load_model``."""
        from mlflow.exceptions import MlflowException
        from mlflow.models import get_model_info

        from ame.registry.savers import flavor_module

        resolved = resolve_model(uri, self.store)
        try:
            flavors = [f for f in get_model_info(resolved.uri).flavors if f != PYFUNC]
        except (MlflowException, OSError) as exc:
            raise _load_error(resolved, exc) from exc
        flavor = self.flavor or (flavors[0] if flavors else None)
        if flavor is None:
            raise UnsupportedFlavorError(
                f"{resolved.uri} has only the python_function flavor; load it with CustomLoader"
            )
        if flavor not in flavors:
            have = ", ".join(flavors) or "python_function only"
            raise UnsupportedFlavorError(
                f"{resolved.uri} was not saved with flavor '{flavor}' (it has: {have})"
            )
        module = flavor_module(flavor)
        try:
            model = module.load_model(resolved.uri)
        except (MlflowException, OSError, ImportError) as exc:
            raise _load_error(resolved, exc) from exc
        return BuiltinLoader.Adapter(model, resolved, flavor)
