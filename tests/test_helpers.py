"""The shared test helpers do what the tests that use them rely on."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import AmeCli
from tests.helpers import free_port, wait_for_file, wait_until


def test_in_process_ame_reports_exit_code_and_one_line_errors(
    ame_cli: AmeCli, tmp_path: Path
) -> None:
    (tmp_path / "ame.yml").write_text("project: p\nmodels:\n  - name: a\n    deploymnt: {}\n")
    bad = ame_cli("validate")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "ame.yml:4:5 models[0]: unknown key 'deploymnt' (did you mean 'deployment'?)"
    ]
    assert ame_cli("--version").stdout.startswith("ame ")
    assert ame_cli("no-such-command").returncode == 2


def test_in_process_ame_leaves_the_process_as_it_found_it(ame_cli: AmeCli, tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("project: p\n")
    before_env, before_cwd = dict(os.environ), os.getcwd()
    handlers = list(logging.getLogger().handlers)
    other = tmp_path / "elsewhere"
    other.mkdir()
    result = ame_cli("--debug", "--verbose", "validate", "-f", str(tmp_path / "ame.yml"), cwd=other)
    assert result.returncode == 0, result.output
    assert dict(os.environ) == before_env  # --debug/--verbose set AME_DEBUG/AME_VERBOSE inside
    assert os.getcwd() == before_cwd
    assert logging.getLogger().handlers == handlers
    # The environment given is the command's own, and a None removes a variable.
    os.environ["AME_SHOW_ME"] = "outer"
    try:
        seen = ame_cli("validate", env={"AME_PATH": str(other), "AME_SHOW_ME": None})
        assert seen.returncode == 0 and os.environ["AME_SHOW_ME"] == "outer"
    finally:
        del os.environ["AME_SHOW_ME"]


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_waits_end_at_the_event_or_the_deadline(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    timer = threading.Timer(0.05, marker.touch)
    timer.start()
    try:
        assert wait_for_file(marker, timeout=10) == marker
    finally:
        timer.cancel()
    with pytest.raises(TimeoutError, match="gave up waiting for never"):
        wait_until(lambda: None, timeout=0.05, what="never")


def test_in_process_ame_leaves_mlflow_pointing_where_it_was(
    ame_cli: AmeCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command activates its project's store; the test's own MLflow URI survives it."""
    import mlflow

    (tmp_path / "ame.yml").write_text("project: p\n")
    mine = f"sqlite:///{tmp_path / 'mine.db'}"
    mlflow.set_tracking_uri(mine)
    try:
        listed = ame_cli("model", "list")
        assert listed.returncode == 0, listed.output
        assert (tmp_path / ".ame" / "mlflow.db").is_file()  # the command used the project's
        assert mlflow.get_tracking_uri() == mine
    finally:
        mlflow.set_tracking_uri(None)
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
