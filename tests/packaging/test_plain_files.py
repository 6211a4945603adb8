"""Seed 004: model files, hook files and a manifest make a packaged-encrypted version.

The folder holds ``models/`` (a pickled scikit-learn model and the loader the
manifest names), ``hooks/`` (pre and post) and ``manifest.json``. The real
``ame`` builds an encrypted package from them, registers it on an embedded
store and serves it over HTTP; the test then asks the server for predictions
and compares them with the hooks and model run by hand. Refusals (a manifest
naming a file that is not there, one that is not JSON or too large, a model
and --files together) leave no package behind.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import AME, AmeResult, free_port, run_ame, wait_for_http

LOADER = textwrap.dedent(
    '''
    """The manifest's entry point: the model from its folder."""
    import pickle
    from pathlib import Path


    def load(files_dir):
        return pickle.loads((Path(files_dir) / "models" / "model.pkl").read_bytes())
    '''
)
PRE = "def preprocess(inputs):\n    return inputs[['x']] * 2.0\n"
POST = "def postprocess(outputs):\n    return [int(v) + 100 for v in outputs]\n"


def _run(cwd: Path, *args: str, **env: str) -> AmeResult:
    """``ame ARGS`` in this process, with no MLflow or package-key variables but ``env``'s."""
    given: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("MLFLOW_", "AME_PACKAGE"))
    }
    given.update({"MLFLOW_DISABLE_TELEMETRY": "true", **env})
    return run_ame(*args, cwd=cwd, env=given)


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, Any]:
    """A project folder laid out as MLSteam's stock-prediction example."""
    from sklearn.linear_model import LogisticRegression

    (tmp_path / "ame.yml").write_text("project: mlsteamflow\n")
    models = tmp_path / "models"
    models.mkdir()
    model = LogisticRegression().fit([[0.0], [2.0], [4.0], [6.0]], [0, 0, 1, 1])
    (models / "model.pkl").write_bytes(pickle.dumps(model))
    (models / "loader.py").write_text(LOADER)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "pre.py").write_text(PRE)
    (hooks / "post.py").write_text(POST)
    manifest = {
        "entry_point": "models.loader:load",
        "files": ["models/model.pkl", "hooks/pre.py", "hooks/post.py"],
        "requirements": ["mlflow", "scikit-learn"],
        "name": "stockpred",  # fields ame does not read are kept as given
        "window": {"days": 30},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"root": tmp_path, "model": model, "manifest": manifest}


def _build(
    root: Path, *extra: str, manifest: str = "manifest.json"
) -> subprocess.CompletedProcess[str]:
    return _run(
        root,
        "package", "build", "--files", "models", "--hooks", "hooks", "--manifest", manifest,
        "-o", "stock.amepkg", "--encrypt", "--generate-key", "stock.key", *extra,
    )  # fmt: skip


def test_build_register_serve_from_plain_files(folder: dict[str, Any]) -> None:
    root = folder["root"]
    built = _build(root)
    assert built.returncode == 0, built.stderr
    # piped, each message is one whole line (it once read "not stored anywhere \nelse")
    assert any(
        line.endswith("keep it safe, it is not stored anywhere else")
        for line in built.stdout.splitlines()
    ), built.stdout
    assert "your manifest is kept as meta/manifest.json" in built.stdout

    inspected = json.loads(_run(root, "package", "inspect", "stock.amepkg", "--json").stdout)
    assert inspected["user_manifest"] == "meta/manifest.json"
    paths = {f["path"] for f in inspected["files"]}
    assert {"meta/manifest.json", "hooks/pre.py", "hooks/post.py", "models/MLmodel"} <= paths
    assert "models/artifacts/files/models/model.pkl" in paths
    verified = _run(root, "package", "verify", "stock.amepkg", "--key-file", "stock.key")
    assert verified.returncode == 0 and verified.stdout.startswith("ok: "), verified.stderr

    # the user's manifest is inside, byte for byte, and only the key opens it
    from ame.packaging.keys import Secret, read_key_file
    from ame.packaging.reader import PackageReader

    out = root / "opened"
    out.mkdir()
    with PackageReader(root / "stock.amepkg") as reader:
        reader.unlock(Secret(key=read_key_file(root / "stock.key")))
        reader.extract(out)
    assert (out / "meta" / "manifest.json").read_bytes() == (root / "manifest.json").read_bytes()
    assert b'"window"' not in (root / "stock.amepkg").read_bytes()  # encrypted, not in clear

    registered = _run(root, "package", "register", "stock.amepkg", "stockpred")
    assert registered.returncode == 0, registered.stderr
    assert "stockpred/1 (packaged-encrypted)" in registered.stdout
    versions = json.loads(_run(root, "model", "versions", "stockpred", "--json").stdout)
    assert versions["versions"][0]["tags"]["ame.model_type"] == "packaged-encrypted"

    port = free_port()
    log = (root / "serve.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["AME_PACKAGE_KEY_FILE"] = str(root / "stock.key")
    proc = subprocess.Popen(
        [AME, "serve", "stockpred/1", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", timeout=180, proc=proc)
        rows = [{"x": 0.5}, {"x": 2.5}, {"x": -1.0}]
        resp = httpx.post(f"{url}/invocations", json={"dataframe_records": rows}, timeout=60)
        assert resp.status_code == 200, resp.text
        expected = [int(v) + 100 for v in folder["model"].predict([[r["x"] * 2.0] for r in rows])]
        assert resp.json()["predictions"] == expected
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _refused(result: AmeResult, root: Path) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (root / "stock.amepkg").exists() and not (root / "stock.key").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".stock.amepkg")]
    return lines[0]


def test_manifest_naming_a_missing_file_is_refused(folder: dict[str, Any]) -> None:
    root = folder["root"]
    manifest = {**folder["manifest"], "files": ["models/model.pkl", "models/scaler.pkl"]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    line = _refused(_build(root), root)
    assert "names files the package would not hold: models/scaler.pkl" in line
    manifest = {**folder["manifest"], "entry_point": "models.nowhere:load"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert "models/nowhere.py (the entry point models.nowhere:load)" in _refused(_build(root), root)


def test_manifest_must_be_bounded_json(folder: dict[str, Any]) -> None:
    root = folder["root"]
    (root / "bad.json").write_text('{"entry_point": ')
    assert "invalid JSON" in _refused(_build(root, manifest="bad.json"), root)
    (root / "list.json").write_text("[1, 2]")
    assert "expected a JSON object" in _refused(_build(root, manifest="list.json"), root)
    (root / "big.json").write_text(json.dumps({"pad": "x" * (1 << 20)}))
    assert "big.json" in _refused(_build(root, manifest="big.json"), root)


def test_files_take_several_paths_and_exclude_a_model(folder: dict[str, Any]) -> None:
    root = folder["root"]
    (root / "extra.txt").write_text("more\n")
    built = _run(
        root,
        "package",
        "build",
        "--files",
        "models",
        "extra.txt",
        "-o",
        "two.amepkg",
        "--name",
        "two",
    )
    assert built.returncode == 0, built.stderr
    inspected = json.loads(_run(root, "package", "inspect", "two.amepkg", "--json").stdout)
    paths = {f["path"] for f in inspected["files"]}
    assert {"models/artifacts/files/extra.txt", "models/artifacts/files/models/model.pkl"} <= paths
    assert inspected["model"]["name"] == "two" and inspected.get("user_manifest") is None
    # a model with --files is refused (by the library; the CLI reads both as files)
    from ame.errors import PackageError
    from ame.packaging import build_package

    with pytest.raises(PackageError, match=r"give a model or --files DIR\.\.\., not both"):
        build_package("m/1", root / "stock.amepkg", files=[root / "models"])
    # two models, or none, are refused
    result = _run(root, "package", "build", "m/1", "m/2", "-o", "stock.amepkg")
    assert "give one model, not 2" in _refused(result, root)
    assert "or --files DIR..." in _refused(_run(root, "package", "build", "-o", "x.amepkg"), root)
