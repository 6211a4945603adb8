"""``ame deployment list`` across backends, and the in-use check ``ame model delete`` is given.

No Ray cluster: the Ray backend is configured (``RAY_ADDRESS``) at a closed
port on 127.0.0.1, which is exactly the "cannot reach it" case. The local
deployment is a record naming this test process (alive) and a real HTTP server
on 127.0.0.1 answering the v2 routes a local backend asks: the record says
version 1, the server says it serves version 7 (its alias moved), and the
listing must believe the server.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import free_port, run_ame

MODEL = "dlmodel"


class _V2(BaseHTTPRequestHandler):
    """The two routes a local backend asks a server: ready, and which version it serves."""

    served = "7"

    def do_GET(self) -> None:  # http.server calls it by this name
        if self.path == "/v2/health/ready":
            body = b'{"ready": true}'
        elif self.path == f"/v2/models/{MODEL}":
            body = json.dumps({"name": MODEL, "versions": [self.served]}).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _V2)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def project(tmp_path: Path, server: str) -> Path:
    (tmp_path / "ame.yml").write_text("project: dltest\n")
    folder = tmp_path / ".ame" / "deployments"
    folder.mkdir(parents=True)
    port = int(server.rsplit(":", 1)[1])
    (folder / f"{MODEL}.json").write_text(
        json.dumps(
            {
                "model": MODEL,
                "ref": f"{MODEL}@champion",
                "version": "1",
                "url": server,
                "pid": os.getpid(),
                "port": port,
                "log": str(folder / f"{MODEL}.log"),
                "started": 0.0,
                "workers": 1,
                "state": "running",
            }
        )
    )
    return tmp_path


def _closed_ray() -> dict[str, str | None]:
    return {"RAY_ADDRESS": f"http://127.0.0.1:{free_port()}", "AME_BACKEND": None}


def test_every_configured_backend_is_listed_and_an_unreachable_one_is_one_line(
    project: Path,
) -> None:
    listed = run_ame("deployment", "list", "--json", cwd=project, env=_closed_ray())
    assert listed.returncode == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["backend"], row["model"], row["state"]) == ("local", MODEL, "ready")
    # the server's answer, not the record's start-time version
    assert row["version"] == "7"
    record = json.loads((project / ".ame" / "deployments" / f"{MODEL}.json").read_text())
    assert record["version"] == "1"  # listing writes nothing
    lines = listed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ray: not reachable:"), listed.stderr
    assert "Traceback" not in listed.output

    table = run_ame("deployment", "list", cwd=project, env={**_closed_ray(), "COLUMNS": "200"})
    assert table.returncode == 0, table.output
    header, first = table.stdout.strip().splitlines()[:2]
    assert header.split()[:3] == ["backend", "model", "version"], table.stdout
    assert first.split()[:3] == ["local", MODEL, "7"], table.stdout
    assert table.stderr.count("ray: not reachable:") == 1

    # one backend named: its failure is the command's (non-zero, one line)
    only = run_ame("deployment", "list", "--backend", "ray", cwd=project, env=_closed_ray())
    assert only.returncode != 0 and only.stderr.startswith("error: no Ray cluster answers")
    assert only.stderr.count("\n") == 1 and "Traceback" not in only.output, only.stderr

    # without Ray configured: local only, nothing on stderr
    alone = run_ame("deployment", "list", "--json", cwd=project, env={"RAY_ADDRESS": None})
    assert alone.returncode == 0 and alone.stderr == "", alone.output
    assert [r["backend"] for r in json.loads(alone.stdout)] == ["local"]


def test_delete_asks_every_backend_and_refuses_when_one_cannot_be_asked(project: Path) -> None:
    (project / "weights.txt").write_text("0.5\n")
    env: dict[str, str | None] = {"RAY_ADDRESS": None, "AME_BACKEND": None}
    for _ in range(2):
        made = run_ame("model", "register", MODEL, "--files", "weights.txt", cwd=project, env=env)
        assert made.returncode == 0, made.output

    # the live local server serves version 7: versions 1 and 2 are free
    free = run_ame("model", "delete", MODEL, "--version", "1", "--yes", cwd=project, env=env)
    assert free.returncode == 0, free.output
    _V2.served = "2"
    try:
        used = run_ame("model", "delete", MODEL, "--version", "2", "--yes", cwd=project, env=env)
        assert used.returncode == 2, used.output
        assert "local deployment of version 2" in used.stderr and used.stderr.count("\n") == 1

        # Ray configured but down: an unknown is not a "no"
        _V2.served = "7"
        down = run_ame(
            "model", "delete", MODEL, "--version", "2", "--yes", cwd=project, env=_closed_ray()
        )
        assert down.returncode != 0 and "Traceback" not in down.output
        assert "cannot tell whether" in down.stderr and "ray: not reachable" in down.stderr
        assert "--force" in down.stderr and down.stderr.count("\n") == 1, down.stderr
        forced = run_ame(
            "model", "delete", MODEL, "--version", "2", "--yes", "--force",
            cwd=project, env=_closed_ray(),
        )  # fmt: skip
        assert forced.returncode == 0, forced.output
    finally:
        _V2.served = "7"
    gone = run_ame("model", "versions", MODEL, "--json", cwd=project, env=env)
    assert gone.returncode == 0 and json.loads(gone.stdout)["versions"] == [], gone.output
