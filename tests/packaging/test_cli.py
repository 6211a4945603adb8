"""``ame package ...`` through the real console script, in subprocesses.

Checks exit codes and messages, that a generated key file is 0600 and that no
key ever appears in the output, and that ``ame package serve`` answers HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers import AME, AmeResult, free_port, run_ame


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> AmeResult | subprocess.CompletedProcess[str]:
    """``ame package ARGS`` in this process; ``serve`` as a real process (it may not return)."""
    given: dict[str, str | None] = {"MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
    for var in ("AME_PACKAGE_KEY_FILE", "AME_PACKAGE_KEY", "AME_PACKAGE_PASSPHRASE"):
        if not env or var not in env:
            given[var] = None
    if args[:1] != ("serve",):
        return run_ame("package", *args, env=given, cwd=cwd)
    full = {k: v for k, v in {**os.environ, **given}.items() if v is not None}
    return subprocess.run(
        [AME, "package", *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=300
    )


@pytest.fixture(scope="module")
def built(files_model: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A package built by the CLI with --generate-key; (package, key file, stdout+stderr)."""
    base = tmp_path_factory.mktemp("cli")
    out, key = base / "files.amepkg", base / "files.key"
    proc = _run(
        "build",
        files_model.ref,
        "-o",
        str(out),
        "--encrypt",
        "--generate-key",
        str(key),
        "--tracking-uri",
        files_model.tracking_uri,
    )
    assert proc.returncode == 0, proc.stderr
    return out, key, proc.stdout + proc.stderr


def test_build_generates_private_key_and_never_prints_it(built: tuple[Path, Path, str]) -> None:
    out, key, output = built
    assert out.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().strip()
    assert len(secret) == 64
    assert secret not in output and secret.upper() not in output
    assert "key id" in output and str(key) in output


def test_inspect_and_verify(
    built: tuple[Path, Path, str], files_model: Any, tmp_path: Path
) -> None:
    out, key, _ = built
    proc = _run("inspect", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["model"]["name"] == files_model.name
    key_id = manifest["encryption"]["key_id"]
    table = _run("inspect", str(out))
    assert table.returncode == 0 and key_id in table.stdout and "models/MLmodel" in table.stdout

    ok = _run("verify", str(out), "--key-file", str(key))
    assert ok.returncode == 0, ok.stderr
    assert "ok:" in ok.stdout and "authenticated" in ok.stdout

    wrong = tmp_path / "wrong.key"
    wrong.write_text("00" * 32)
    bad = _run("verify", str(out), "--key-file", str(wrong))
    assert bad.returncode == 2
    assert f"error: wrong key for package (key id {key_id}" in bad.stderr
    assert "Traceback" not in bad.stderr

    data = bytearray(out.read_bytes())
    data[1024] ^= 0xFF
    flipped = tmp_path / "flipped.amepkg"
    flipped.write_bytes(bytes(data))
    corrupt = _run("verify", str(flipped), "--key-file", str(key))
    assert corrupt.returncode == 2 and "package corrupt" in corrupt.stderr


def test_predict(built: tuple[Path, Path, str], files_model: Any, tmp_path: Path) -> None:
    out, key, _ = built
    rows = tmp_path / "rows.json"
    rows.write_text(files_model.inputs.to_json(orient="records"))
    proc = _run("predict", str(out), "--key-file", str(key), "-i", str(rows))
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(json.loads(proc.stdout)["predictions"], files_model.expected)


def test_passphrase_from_env(files_model: Any, tmp_path: Path) -> None:
    out = tmp_path / "pw.amepkg"
    env = {"MY_PASS": "hunter2 hunter2"}
    proc = _run(
        "build",
        files_model.ref,
        "-o",
        str(out),
        "--encrypt",
        "--passphrase-env",
        "MY_PASS",
        "--tracking-uri",
        files_model.tracking_uri,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr and "scrypt" in proc.stdout
    assert _run("verify", str(out), "--passphrase-env", "MY_PASS", env=env).returncode == 0
    wrong = _run("verify", str(out), "--passphrase-env", "MY_PASS", env={"MY_PASS": "nope"})
    assert wrong.returncode == 2 and "wrong key for package" in wrong.stderr
    unset = _run("verify", str(out), "--passphrase-env", "NOT_SET_ANYWHERE")
    assert unset.returncode == 2 and "NOT_SET_ANYWHERE" in unset.stderr


def test_failed_build_leaves_no_package_and_no_key(files_model: Any, tmp_path: Path) -> None:
    out, key = tmp_path / "m.amepkg", tmp_path / "m.key"
    proc = _run(
        "build",
        f"{files_model.name}/999",
        "-o",
        str(out),
        "--encrypt",
        "--generate-key",
        str(key),
        "--tracking-uri",
        files_model.tracking_uri,
    )
    assert proc.returncode == 2
    assert "999" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
    usage = _run("build", files_model.ref, "-o", str(out), "--encrypt")
    assert usage.returncode == 2 and "--encrypt needs" in usage.stderr
    # A key option without --encrypt is refused, not silently read as either.
    implied = _run("build", files_model.ref, "-o", str(out), "--generate-key", str(key))
    assert implied.returncode == 2 and "go with --encrypt" in implied.stderr
    assert not out.exists() and not key.exists()


def test_register(built: tuple[Path, Path, str], files_model: Any, unique_name: str) -> None:
    out, _, _ = built
    proc = _run("register", str(out), unique_name, "--tracking-uri", files_model.tracking_uri)
    assert proc.returncode == 0, proc.stderr
    assert f"registered {unique_name}/1 (packaged-encrypted)" in proc.stdout


def test_serve(built: tuple[Path, Path, str], files_model: Any, tmp_path: Path) -> None:
    out, key, _ = built
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [AME, "package", "serve", str(out), "--key-file", str(key), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("ame package serve did not become healthy")
        reply = httpx.post(
            f"{url}/invocations",
            json={"dataframe_records": files_model.inputs.to_dict(orient="records")},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(
            np.asarray(reply.json()["predictions"]).ravel(), files_model.expected
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert str(key.read_text().strip()) not in (tmp_path / "serve.log").read_text()


def test_serve_refuses_wrong_key_before_listening(
    built: tuple[Path, Path, str], tmp_path: Path
) -> None:
    out, _, _ = built
    wrong = tmp_path / "wrong.key"
    wrong.write_text("11" * 32)
    proc = _run("serve", str(out), "--key-file", str(wrong), "--port", str(free_port()))
    assert proc.returncode == 2 and "wrong key for package" in proc.stderr
