"""``ame model ...`` and ``ame ui`` through the real entry point, on both stores.

Commands run in-process through ``ame.cli.main.run`` (the console script's own
function: same parsing, same error printing, same exit codes); ``ame ui`` and
the no-TTY confirmation run as real ``ame`` subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest

from ame._system import kill_tree
from ame.registry import Registry
from ame.registry.store import Store
from tests.helpers import AME, free_port, run_ame, wait_for_http

from .conftest import Tiny


def ame(store: Store, *args: str) -> tuple[int, str, str]:
    """Run ``ame ARGS --tracking-uri STORE [-f PROJECT]`` in-process; (exit code, out, err)."""
    argv = [*args, "--tracking-uri", store.tracking_uri]
    if store.project_root is not None:
        argv += ["-f", str(store.project_root / "ame.yml")]
    done = run_ame(*argv)
    return done.returncode, done.stdout, done.stderr


def test_list_show_versions(store: Store, logged: Any, unique_name: str) -> None:
    registry = Registry(store)
    registry.register(unique_name, logged.model_uri, description="first")
    registry.register(unique_name, logged.model_uri)
    registry.set_alias(unique_name, "champion", 1)

    code, out, _ = ame(store, "model", "list", "--filter", f"name = '{unique_name}'", "--json")
    assert code == 0
    models = json.loads(out)["models"]
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in models] == [
        (unique_name, "2", {"champion": "1"})
    ]
    code, out, _ = ame(store, "model", "list", "--filter", f"name = '{unique_name}'")
    assert code == 0 and unique_name in out and "champion" in out

    code, out, _ = ame(store, "model", "versions", unique_name, "--max-results", "1", "--json")
    page = json.loads(out)
    assert [v["version"] for v in page["versions"]] == ["2"]
    assert page["next_page_token"]
    code, out, _ = ame(
        store,
        "model",
        "versions",
        unique_name,
        "--page-token",
        page["next_page_token"],
        "--json",
    )
    assert [v["version"] for v in json.loads(out)["versions"]] == ["1"]
    code, out, _ = ame(store, "model", "versions", unique_name, "--all", "--json")
    listed = json.loads(out)["versions"]
    assert [(v["version"], v["uri"]) for v in listed] == [
        ("2", f"models:/{unique_name}/2"),
        ("1", f"models:/{unique_name}/1"),
    ]
    assert listed[1]["description"] == "first"

    # Searching versions: an MLflow filter ANDed with the model's name.
    registry.set_version_tags(unique_name, 1, {"stage": "qa"})
    code, out, err = ame(
        store, "model", "versions", unique_name, "--filter", "tags.stage = 'qa'", "--json"
    )
    assert code == 0, err
    assert [v["version"] for v in json.loads(out)["versions"]] == ["1"]
    code, out, _ = ame(store, "model", "versions", unique_name, "--filter", "tags.stage = 'prod'")
    assert code == 0 and f"no version of {unique_name} matches" in out
    code, _, err = ame(store, "model", "versions", unique_name, "--filter", "nonsense ===")
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err

    code, out, _ = ame(store, "model", "show", unique_name, "--json")
    shown = json.loads(out)
    assert shown["aliases"] == {"champion": "1"} and len(shown["versions"]) == 2
    code, out, _ = ame(store, "model", "show", unique_name)
    assert code == 0 and "champion" in out and "latest version: 2" in out


def test_errors_are_one_line_exit_2(store: Store, unique_name: str) -> None:
    for args, message in (
        (["model", "show", unique_name], f"error: no registered model '{unique_name}'"),
        (["model", "versions", unique_name], "error: no registered model"),
        (["model", "register", unique_name], "error: give exactly one of --run"),
        (["model", "register", unique_name, "--run", "0123456789abcdef"], "error: no run"),
        (["model", "alias", unique_name, "prod"], "error: give the VERSION"),
        (["model", "tag", unique_name, "1", "novalue"], "error: invalid tag 'novalue'"),
        (["model", "copy", "bad ref!", "x"], "error: invalid model reference"),
        (
            ["model", "register", unique_name, "--run", "0123456789abcdef", "--files", "x"],
            "error: give exactly one of --run",
        ),
        (
            ["model", "register", unique_name, "--run", "0123456789abcdef", "--loader", "m:f"],
            "error: --loader and --pip go with --files",
        ),
        (["model", "register", unique_name, "--files", "/nonexistent/w.bin"], "error: cannot"),
        (["model", "alias", "bad name!", "prod", "1"], "error: invalid model reference"),
    ):
        code, _, err = ame(store, *args)
        assert code == 2, args
        assert err.strip().splitlines() == [err.strip()], err
        assert err.startswith(message), (args, err)


def test_register_alias_tag_describe_copy_delete(
    store: Store,
    tiny: Tiny,
    tmp_path: Path,
    unique_name: str,
) -> None:
    joblib.dump(tiny.model, tmp_path / "model.joblib")
    (tmp_path / "hook.py").write_text(
        "import joblib, os\n"
        "def load(path):\n"
        "    return joblib.load(os.path.join(path, 'model.joblib'))\n"
    )
    code, out, err = ame(store, "model", "register", unique_name,
        "--files", str(tmp_path / "model.joblib"), str(tmp_path / "hook.py"),
        "--pip", "scikit-learn", "-d", "from files", "--tag", "team=risk", "--alias", "candidate",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    version = json.loads(out)
    assert version["version"] == "1" and version["aliases"] == ["candidate"]
    assert version["tags"]["team"] == "risk" and version["description"] == "from files"

    code, out, err = ame(store, "model", "register", unique_name, "--run", version["run_id"])
    assert code == 0, err
    assert f"registered {unique_name} version 2" in out

    assert ame(store, "model", "alias", unique_name, "champion", "1")[0] == 0
    assert ame(store, "model", "alias", unique_name, "champion", "2")[0] == 0
    assert ame(store, "model", "tag", unique_name, "2", "ok=yes", "n=1")[0] == 0
    assert ame(store, "model", "tag", unique_name, "2", "--delete", "n")[0] == 0
    assert ame(store, "model", "describe", unique_name, "the model")[0] == 0
    assert ame(store, "model", "describe", unique_name, "v2", "--version", "2")[0] == 0
    registry = Registry(store)
    v2 = registry.get_version(unique_name, 2)
    assert v2.aliases == ["champion"] and v2.tags["ok"] == "yes" and "n" not in v2.tags
    assert v2.description == "v2"
    assert registry.get_model(unique_name).description == "the model"

    code, out, err = ame(store, "model", "copy", f"{unique_name}@champion", f"{unique_name}-prod")
    assert code == 0, err
    assert (
        registry.get_version(f"{unique_name}-prod", 1).tags["ame.copied_from"] == f"{unique_name}/2"
    )

    # In use by an alias: refused even with --yes, and nothing is deleted.
    code, _, err = ame(store, "model", "delete", unique_name, "--version", "2", "--yes")
    assert code == 2 and "alias 'champion'" in err
    # pytest's stdin is not a terminal: without --yes the command refuses.
    code, _, err = ame(store, "model", "delete", unique_name, "--version", "2", "--force")
    assert code == 2 and "needs --yes" in err
    assert registry.get_version(unique_name, 2).version == "2"
    code, out, _ = ame(store, "model", "delete", unique_name, "--version", "2", "--yes", "--force")
    assert code == 0 and "deleted" in out
    assert ame(store, "model", "alias", unique_name, "candidate", "--delete")[0] == 0
    code, out, _ = ame(store, "model", "delete", unique_name, "--yes")
    assert code == 0
    assert ame(store, "model", "show", unique_name)[0] == 2


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ui_serves_the_project_store(tmp_path: Path, store: Store) -> None:
    # ame's pages on either store; MLflow's UI mounted under /mlflow/ on the embedded one
    # (tests/ui covers the pages themselves).
    project = tmp_path / "ui-project"
    project.mkdir()
    (project / "ame.yml").write_text("project: uiproj\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    remote = [] if store.embedded else ["--tracking-uri", store.tracking_uri]
    proc = subprocess.Popen(
        [AME, "ui", "--port", str(port), "-f", str(project / "ame.yml"), *remote],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/models", timeout=400, proc=proc)
        except RuntimeError:  # it exited: its own words say why
            pytest.fail(proc.stderr.read().decode() if proc.stderr else "ame ui exited")
        if not store.embedded:
            return
        assert (project / ".ame" / "mlflow.db").is_file()
        found = httpx.get(
            f"http://127.0.0.1:{port}/mlflow/api/2.0/mlflow/experiments/search",
            params={"max_results": 10},
            timeout=10,
        )
        assert found.status_code == 200
    finally:
        kill_tree(proc, grace=30)  # the server and its MLflow workers, by their group


def test_delete_without_tty_refuses_in_real_console_script(
    store: Store, logged: Any, unique_name: str
) -> None:
    Registry(store).register(unique_name, logged.model_uri)
    argv = [AME, "model", "delete", unique_name, "--tracking-uri", store.tracking_uri]
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 2
    question = f"delete model {unique_name} and all its versions (latest: 1)"
    assert done.stderr.strip() == f"error: {question} needs --yes when not run interactively"
    assert Registry(store).get_model(unique_name).latest_version == "1"


def _answer_on_a_terminal(argv: list[str], answer: str) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as stdin/stdout, type ``answer``; (exit code, output)."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if not answered and b"?" in output:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert answered, output.decode(errors="replace")
    return code, output.decode(errors="replace")


def test_delete_asks_on_a_terminal(store: Store, logged: Any, unique_name: str) -> None:
    Registry(store).register(unique_name, logged.model_uri)
    argv = [AME, "model", "delete", unique_name, "--version", "1", "--tracking-uri"]
    argv.append(store.tracking_uri)
    code, output = _answer_on_a_terminal(argv, "n")
    assert f"delete {unique_name} version 1?" in output
    assert code == 1 and "nothing deleted" in output
    assert Registry(store).get_version(unique_name, 1).version == "1"
    code, output = _answer_on_a_terminal(argv, "y")
    assert code == 0 and f"deleted {unique_name} version 1" in output
    assert list(Registry(store).iter_versions(unique_name)) == []
