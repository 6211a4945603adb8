"""The CLI as scripts and people read it: whole values through a pipe, folded on a terminal.

Every listing runs as the real ``ame`` console script, its stdout a pipe
(``subprocess`` with ``capture_output``), against a real embedded store in a
temporary project; the terminal test runs it under a real pseudo-terminal of
60 columns. Registering two versions and serving one costs a few seconds, so
the project is made once per module.
"""

from __future__ import annotations

import json
import os
import pickle
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ame.cli.output import plain_table

AME = str(Path(sys.executable).parent / "ame")
MODEL = "outlr"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AME_"))}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "AME_AGENT_IDLE_SECONDS": "20", **extra})
    return env


def ame(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``ame ARGS`` in ``project`` with stdout and stderr pipes (no terminal)."""
    return subprocess.run(
        [AME, *args], cwd=project, env=_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A project with a custom task and two versions of a pickled model, aliases set."""
    from sklearn.linear_model import LogisticRegression

    from ame.registry.facade import Registry
    from ame.registry.store import resolve_store

    root = tmp_path_factory.mktemp("output")
    (root / "ame.yml").write_text(
        "project: outputtests\n"
        "models:\n"
        f"  - name: {MODEL}\n"
        "tasks:\n"
        "  - name: hello\n"
        "    executor: !custom\n"
        "      command: python -c \"print('hello from the task')\"\n"
    )
    files = tmp_path_factory.mktemp("files")
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    (files / "model.pkl").write_bytes(pickle.dumps(model))
    registry = Registry(resolve_store(None, root))
    first = registry.register_from_files(MODEL, [files / "model.pkl"], pip_requirements=["mlflow"])
    second = registry.register_from_files(MODEL, [files / "model.pkl"], pip_requirements=["mlflow"])
    registry.set_alias(MODEL, "champion", second.version)
    registry.set_alias(MODEL, "canary", second.version)
    registry.set_alias(MODEL, "previous", first.version)
    yield {"root": root, "versions": [first, second]}
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_plain_table_keeps_every_value_whole() -> None:
    url = "http://127.0.0.1:45678/a/very/long/path/that/would/not/fit/in/eighty/columns"
    text = plain_table(("model", "url"), [("m", url), ("longer-name", None)])
    assert text.splitlines() == [
        "model        url",
        f"m            {url}",
        "longer-name",
    ]
    assert plain_table(("a", "b"), [("x\ty", "1")], tsv=True) == "a\tb\nx y\t1"


def test_versions_and_show_list_aliases_piped_and_json(project: dict[str, Any]) -> None:
    root = project["root"]
    first, second = project["versions"]

    listed = json.loads(ame(root, "model", "versions", MODEL, "--json").stdout)["versions"]
    assert {v["version"]: v["aliases"] for v in listed} == {
        second.version: ["canary", "champion"],
        first.version: ["previous"],
    }
    shown = json.loads(ame(root, "model", "show", MODEL, "--json").stdout)
    assert {v["version"]: v["aliases"] for v in shown["versions"]} == {
        second.version: ["canary", "champion"],
        first.version: ["previous"],
    }

    table = ame(root, "model", "versions", MODEL)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["version", "aliases", "status"]
    by_version = {row.split()[0]: row for row in rows}
    assert "canary, champion" in by_version[second.version]
    assert "previous" in by_version[first.version]
    # the full run id, the one `ame task logs` and MLflow need, not a prefix
    assert second.run_id and second.run_id in by_version[second.version]
    assert "…" not in table.stdout

    show = ame(root, "model", "show", MODEL)
    assert show.returncode == 0, show.stderr
    assert f"alias champion → version {second.version}" in show.stdout
    version_rows = [line for line in show.stdout.splitlines() if line.startswith(first.version)]
    assert len(version_rows) == 1 and "previous" in version_rows[0]


def test_task_list_piped_shows_the_whole_run_id(project: dict[str, Any]) -> None:
    root = project["root"]
    run = ame(root, "task", "run", "hello")
    assert run.returncode == 0, run.stderr
    run_id = re.search(r"run ([0-9a-f]{32}) FINISHED", run.stderr)
    assert run_id, run.stderr

    listed = ame(root, "task", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:3] == ["run", "id", "task"]
    assert run_id.group(1) in listed.stdout
    # a script can take the id from the listing and read the log back with it
    first_id = listed.stdout.splitlines()[1].split()[0]
    logs = ame(root, "task", "logs", first_id)
    assert logs.returncode == 0 and "hello from the task" in logs.stdout


def test_deployment_list_and_status_piped_show_the_whole_url(project: dict[str, Any]) -> None:
    root = project["root"]
    second = project["versions"][1]
    deployed = ame(root, "deploy", MODEL, "--version", second.version, "--json")
    assert deployed.returncode == 0, deployed.stderr
    info = json.loads(deployed.stdout)
    try:
        listed = ame(root, "deployment", "list")
        assert listed.returncode == 0, listed.stderr
        assert info["url"].startswith("http://127.0.0.1:")
        assert re.search(rf"(^|\s){re.escape(info['url'])}(\s|$)", listed.stdout), listed.stdout
        assert str(info["pid"]) in listed.stdout

        status = ame(root, "status")
        assert status.returncode == 0, status.stderr
        row = next(line for line in status.stdout.splitlines() if line.startswith(MODEL))
        assert info["url"] in row.split()
        assert f"@champion -> {second.version}" in row
        assert "project outputtests" not in status.stdout  # the title is for people only
    finally:
        stopped = ame(root, "deployment", "stop", MODEL)
        assert stopped.returncode == 0, stopped.stderr


def test_serve_unknown_version_or_alias_lists_what_exists(project: dict[str, Any]) -> None:
    root = project["root"]
    first, second = project["versions"]
    missing = ame(root, "serve", f"{MODEL}/99")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: model '{MODEL}' has no version 99; its versions: {first.version}, {second.version}"
    ]
    alias = ame(root, "serve", f"{MODEL}@nope")
    assert alias.returncode == 2
    assert alias.stderr.strip().splitlines() == [
        f"error: model '{MODEL}' has no alias 'nope'; its aliases: canary, champion, previous"
    ]


def _read_pty(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """Everything the program writes to its terminal until it exits (deadline ``timeout``)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the program closed its side
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks)


def test_terminal_table_folds_long_values(project: dict[str, Any]) -> None:
    """Under a real 60-column terminal the run id folds onto more lines; nothing ends in '…'."""
    root = project["root"]
    second = project["versions"][1]
    main, child = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 60, 0, 0))
    proc = subprocess.Popen(
        [AME, "model", "versions", MODEL],
        cwd=root,
        env=_env(COLUMNS="60", LINES="40", TERM="xterm"),
        stdin=child,
        stdout=child,
        stderr=child,
        close_fds=True,
    )
    os.close(child)
    try:
        raw = _read_pty(main, proc, timeout=120)
        assert proc.wait(timeout=60) == 0, raw.decode(errors="replace")
    finally:
        os.close(main)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode("utf-8", errors="replace"))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60, text
    assert "…" not in text
    assert second.run_id not in text  # too long for its column: it is folded...
    # the cells of the "run" column, read down the rows
    header = next(line for line in lines if "┃" in line)
    index = [name.strip() for name in header.split("┃")].index("run")
    rows = [line.split("│") for line in lines if "│" in line]
    column = "".join(cells[index].strip() for cells in rows)
    assert second.run_id in column  # ...and read down its column, every character is there


def test_versions_list_aliases_on_a_remote_server(
    mlflow_server: str, tmp_path: Path, unique_name: str
) -> None:
    """The same through a real ``mlflow server`` (its REST store returns aliases differently)."""
    from ame.registry.facade import Registry
    from ame.registry.store import resolve_store

    (tmp_path / "weights.txt").write_text("1 2 3\n")
    registry = Registry(resolve_store(mlflow_server, tmp_path))
    first = registry.register_from_files(unique_name, [tmp_path / "weights.txt"])
    second = registry.register_from_files(unique_name, [tmp_path / "weights.txt"])
    registry.set_alias(unique_name, "champion", second.version)
    registry.set_alias(unique_name, "old", first.version)
    result = subprocess.run(
        [AME, "model", "versions", unique_name, "--json", "--tracking-uri", mlflow_server],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["versions"]
    assert {v["version"]: v["aliases"] for v in listed} == {
        second.version: ["champion"],
        first.version: ["old"],
    }
