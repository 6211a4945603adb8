"""The pyfunc model a registered ``packaged-encrypted`` version holds.

Its only artifact is the package file, still encrypted. ``load_context`` opens
it with the key from the environment of the process that loads it
(``AME_PACKAGE_KEY_FILE``, ``AME_PACKAGE_KEY`` or ``AME_PACKAGE_PASSPHRASE``),
so the registry, ``mlflow.pyfunc.load_model`` and the serving stack all load it
the usual way while the key never enters the registry. The loading
environment needs ame installed (this class is pickled by reference).
"""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel

from ame.packaging.errors import KeyRequiredError

PACKAGE_ARTIFACT = "package"


class PackagedPythonModel(PythonModel):
    """Loads and predicts with the package stored as this model's artifact."""

    def load_context(self, context: Any) -> None:
        from ame.packaging.keys import KEY_ENV, KEY_FILE_ENV, PASSPHRASE_ENV
        from ame.packaging.opener import open_package

        try:
            self._model = open_package(context.artifacts[PACKAGE_ARTIFACT])
        except KeyRequiredError:
            raise KeyRequiredError(
                f"this packaged-encrypted model needs its key: set {KEY_FILE_ENV}, "
                f"{KEY_ENV} or {PASSPHRASE_ENV} in the environment that loads it"
            ) from None

    # No annotations on purpose: MLflow 3 reads predict's type hints as an input
    # schema, and the schema here is the manifest's signature, set at logging.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self._model.predict(model_input, params=params)
