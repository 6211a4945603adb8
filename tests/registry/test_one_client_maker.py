"""``ame.registry`` is the only package that makes an MLflow client (docs/mlflow-access.md).

Checked by parsing the source (never importing it): a call of ``MlflowClient``
(or of ``mlflow.start_run``, ``mlflow.search_runs`` and ``mlflow.set_tracking_uri``,
which use the process-wide client) anywhere under ``src/ame`` outside
``ame/registry`` fails, with the file and line. The scaffold's templates are the
user's training code, not ame's, and may call MLflow as they like.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ame"
ALLOWED = (PACKAGE / "registry", PACKAGE / "scaffold")
# ``mlflow.<these>`` use the process-wide client; a method of a client the
# registry made (``client.search_runs``) is fine.
MODULE_CALLS = {"start_run", "search_runs", "set_tracking_uri"}


def _makes_client(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "MlflowClient"
    if isinstance(func, ast.Attribute):
        if func.attr == "MlflowClient":
            return True
        owner = func.value
        return func.attr in MODULE_CALLS and isinstance(owner, ast.Name) and owner.id == "mlflow"
    return False


def client_calls(source: str) -> list[int]:
    """Lines of ``source`` that make an MLflow client or use the process-wide one."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and _makes_client(node)
    ]


def test_only_the_registry_makes_mlflow_clients() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(path.is_relative_to(allowed) for allowed in ALLOWED):
            continue
        found += [
            f"{path.relative_to(PACKAGE.parent)}:{line}" for line in client_calls(path.read_text())
        ]
    assert not found, "MLflow clients made outside ame/registry:\n" + "\n".join(found)


def test_the_check_sees_each_spelling() -> None:
    source = (
        "from mlflow.tracking import MlflowClient\nc = MlflowClient()\n"
        "import mlflow\nmlflow.start_run()\nclient.search_runs([])\n"
        "mlflow.tracking.MlflowClient()\n"
    )
    assert client_calls(source) == [2, 4, 6]
