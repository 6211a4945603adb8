"""The parallel start-up: a forked child resolves the version while the server imports.

Each case runs in a fresh interpreter, as ``ame serve`` does: the child is
forked from a process that has not opened the store, so nothing is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.serving.helpers import Store

RESOLVE = """
import json, sys
from ame.serving.prefetch import start_resolution
try:
    found = start_resolution(sys.argv[1], sys.argv[2]).result()
    print(json.dumps({"ok": found.__dict__, "mlflow_loaded": "mlflow" in sys.modules}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def _resolve(store: Store, text: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", RESOLVE, text, store.uri],
        cwd=store.root,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer


def test_child_resolves_and_downloads_without_loading_mlflow_in_the_parent(store: Store) -> None:
    answer = _resolve(store, f"{store.lr}/1")
    found = answer["ok"]
    assert (found["name"], found["version"], found["follows"]) == (store.lr, "1", None)
    assert found["uri"] == f"models:/{store.lr}/1"
    assert (Path(found["local_path"]) / "MLmodel").is_file()
    # The point of the child: the parent was free to import other things meanwhile.
    assert answer["mlflow_loaded"] is False


def test_alias_resolves_to_its_version_and_is_followed(store: Store) -> None:
    found = _resolve(store, f"{store.pyf}@champion")["ok"]
    assert found["follows"] == "champion"
    assert found["version"].isdigit()


def test_child_errors_come_back_with_their_type_and_message(store: Store) -> None:
    missing = _resolve(store, "no-such-model-anywhere")
    # the registry's resolver words the message (and lists the models there are)
    assert missing["error"] == "ModelNotFoundError"
    assert "'no-such-model-anywhere'" in missing["message"] and store.lr in missing["message"]
    alias = _resolve(store, f"{store.lr}@nosuchalias")
    assert alias["error"] == "AliasNotFoundError" and "nosuchalias" in alias["message"]
    version = _resolve(store, f"{store.lr}/999")
    assert version["error"] == "VersionNotFoundError"


WARM = """
import json, sys
from ame.serving.prefetch import warm_model_stack
warm_model_stack(json.loads(sys.argv[1]))
print("skops" in sys.modules, "mlflow.pyfunc" in sys.modules)
"""


def _warmed(flavors: dict[str, Any]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", WARM, json.dumps(flavors)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return proc.stdout.strip()


def test_warm_up_imports_skops_only_for_models_that_need_it() -> None:
    skops_model = {"sklearn": {"serialization_format": "skops"}, "python_function": {}}
    assert _warmed(skops_model) == "True True"
    assert _warmed({"python_function": {"loader_module": "mlflow.pyfunc.model"}}) == "False True"
