"""The UI's form handlers and their refusals, in process through Starlette's test client.

The app is the real one on a real embedded store (the session's UI project);
each refusal is checked for its one line on the page, its status, and for
having written nothing to the registry.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from ame.ui.app import UiConfig, create_app
from ame.ui.security import LoopbackHosts, TokenGate, is_loopback
from ame.ui.server import UiError, access_token
from tests.ui.conftest import Project


def _name() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def _config(project: Project, **kwargs: Any) -> UiConfig:
    from ame.registry.store import resolve_store

    return UiConfig(
        store=resolve_store(project.tracking_uri, project.root), project_root=project.root, **kwargs
    )


@pytest.fixture(scope="module")
def client(ui_project: Project) -> Iterator[TestClient]:
    with TestClient(create_app(_config(ui_project, max_upload=200_000))) as c:
        yield c


def _csrf(client: TestClient, path: str = "/models/new") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def _line(page: str, kind: str = "error") -> str:
    found = re.search(rf'class="{kind}"[^>]*>([^<]*)<', page)
    assert found, f"no {kind} line on the page"
    import html

    return html.unescape(found.group(1))


def _model(client: TestClient, name: str) -> None:
    answer = client.post("/models/new", data={"csrf": _csrf(client), "name": name})
    assert answer.status_code == 200 and _line(answer.text, "notice") == f"created model {name}"


# --- models --------------------------------------------------------------------------


def test_create_model_refusals_are_one_line(client: TestClient, ui_project: Project) -> None:
    token = _csrf(client)
    answer = client.post("/models/new", data={"csrf": token, "name": "", "description": "kept"})
    assert answer.status_code == 400
    assert "\n" not in _line(answer.text)
    assert "kept" in answer.text  # the form comes back as it was
    name = _name()
    _model(client, name)
    again = client.post("/models/new", data={"csrf": token, "name": name})
    assert again.status_code == 400
    assert _line(again.text) == f"model '{name}' already exists"


def test_forms_without_a_valid_csrf_token_are_refused(ui_project: Project) -> None:
    name = _name()
    with TestClient(create_app(_config(ui_project))) as c:
        token = _csrf(c)
        assert c.post("/models/new", data={"name": name}).status_code == 403
        assert c.post("/models/new", data={"csrf": "0" * 64, "name": name}).status_code == 403
        # A token minted for another browser's cookie is no good with this one's.
        with TestClient(create_app(_config(ui_project))) as other:
            theirs = _csrf(other)
        assert c.post("/models/new", data={"csrf": theirs, "name": name}).status_code == 403
        # Nor is this browser's token from another server (its key is per process).
        c.cookies.clear()
        assert c.post("/models/new", data={"csrf": token, "name": name}).status_code == 403
    assert not list(ui_project.registry().iter_models(f"name = '{name}'"))


def test_unknown_model_is_a_404_with_one_line(client: TestClient) -> None:
    answer = client.get("/models/no-such-model-here")
    assert answer.status_code == 404
    assert "no-such-model-here" in _line(answer.text)
    assert client.get("/nowhere").status_code == 404


# --- new versions -----------------------------------------------------------------------


def test_upload_over_the_cap_registers_nothing(client: TestClient, ui_project: Project) -> None:
    name = _name()
    _model(client, name)
    token = _csrf(client, f"/models/{name}/versions/new")
    answer = client.post(
        f"/models/{name}/versions/files",
        data={"csrf": token},
        files=[("files", ("big.bin", b"\0" * 300_000))],
    )
    assert answer.status_code == 413
    assert "larger than this server's limit of 195 KiB" in _line(answer.text)
    assert list(ui_project.registry().iter_versions(name)) == []


@pytest.mark.parametrize("bad", ["../evil.txt", "/etc/passwd", "a/../../b.txt"])
def test_uploaded_names_cannot_leave_the_temporary_folder(
    client: TestClient, ui_project: Project, bad: str
) -> None:
    from ame.ui.uploads import BadFormError, safe_relative

    with pytest.raises(BadFormError):
        safe_relative(bad)
    name = _name()
    _model(client, name)
    token = _csrf(client, f"/models/{name}/versions/new")
    answer = client.post(
        f"/models/{name}/versions/files", data={"csrf": token}, files=[("files", (bad, b"x"))]
    )
    # Starlette may already reduce the name to its last part; either way nothing escapes.
    assert answer.status_code in (303, 200, 400)
    assert not (ui_project.root.parent / "evil.txt").exists()


def test_picked_paths_must_be_inside_the_project(client: TestClient, ui_project: Project) -> None:
    name = _name()
    _model(client, name)
    token = _csrf(client, f"/models/{name}/versions/new")
    for picked, says in (
        ("../../etc", "outside the project folder"),
        ("nope.txt", "does not exist"),
    ):
        answer = client.post(
            f"/models/{name}/versions/files", data={"csrf": token, "picked": picked}
        )
        assert answer.status_code == 400
        assert says in _line(answer.text)
    empty = client.post(f"/models/{name}/versions/files", data={"csrf": token})
    assert "choose files to upload or pick some" in _line(empty.text)
    assert list(ui_project.registry().iter_versions(name)) == []


def test_version_from_a_project_folder(client: TestClient, ui_project: Project) -> None:
    name = _name()
    _model(client, name)
    page = client.get(f"/models/{name}/versions/new")
    assert 'value="plain/hook.py"' in page.text  # the picker lists the project's files
    assert ".ame" not in re.findall(r'name="picked" value="([^"]+)"', page.text)
    token = _csrf(client, f"/models/{name}/versions/new")
    answer = client.post(
        f"/models/{name}/versions/files",
        data={"csrf": token, "picked": "plain/", "tags": "team=risk\nstage=dev"},
    )
    assert _line(answer.text, "notice") == f"registered {name} version 1"
    version = ui_project.registry().get_version(name, "1")
    assert version.tags["ame.files"] == "plain"
    assert version.tags["team"] == "risk" and version.tags["stage"] == "dev"
    # The *from a run* list (a registry query) offers the training run, never
    # the run ame opened to save these files.
    from ame.registry.logged_runs import runs_with_models

    listed = {r.run_id for r in runs_with_models(ui_project.registry())}
    assert ui_project.run_id in listed and version.run_id not in listed


def test_alias_policy_reads_ame_yml_the_same_for_cli_and_ui(tmp_path: Path) -> None:
    from ame.registry.alias_inputs import has_validation_task

    (tmp_path / "ame.yml").write_text(
        "project: policy\n"
        "models:\n"
        "  - name: gated\n"
        "    training: {task: {taskRef: fit}}\n"
        "    validation: {task: {taskRef: fit}}\n"
        "  - name: free\n"
        "    training: {task: {taskRef: fit}}\n"
        "tasks:\n"
        "  - name: fit\n"
        "    executor: !custom {command: python -V}\n"
    )
    assert has_validation_task("gated", tmp_path) is True
    assert has_validation_task("free", tmp_path / "ame.yml") is False
    assert has_validation_task("unknown", tmp_path) is None  # the version's tag decides
    (tmp_path / "ame.yml").write_text("project: [unclosed\n")
    assert has_validation_task("gated", tmp_path) is None


def test_version_from_an_unknown_run_is_refused(client: TestClient, ui_project: Project) -> None:
    name = _name()
    _model(client, name)
    page = client.get(f"/models/{name}/versions/new?from=run")
    assert ui_project.run_id in page.text  # the run that logged a model is listed
    token = _csrf(client)
    answer = client.post(
        f"/models/{name}/versions/run", data={"csrf": token, "run": "0" * 32 + "/model"}
    )
    assert answer.status_code == 400
    assert f"no run '{'0' * 32}'" in _line(answer.text)
    assert list(ui_project.registry().iter_versions(name)) == []


def _package_files(
    root: Path, manifest: bytes | None = None
) -> list[tuple[str, tuple[str, bytes]]]:
    return [
        ("model_files", ("loader.py", (root / "models" / "loader.py").read_bytes())),
        ("model_files", ("offset.txt", (root / "models" / "offset.txt").read_bytes())),
        ("hook_files", ("pre.py", (root / "hooks" / "pre.py").read_bytes())),
        ("hook_files", ("post.py", (root / "hooks" / "post.py").read_bytes())),
        ("manifest", ("manifest.json", manifest or (root / "manifest.json").read_bytes())),
    ]


def test_generated_key_is_shown_once_and_kept_nowhere(
    client: TestClient, ui_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    name = _name()
    _model(client, name)
    token = _csrf(client)
    answer = client.post(
        f"/models/{name}/versions/encrypted",
        data={"csrf": token, "key": "generate"},
        files=_package_files(ui_project.root),
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    key = re.search(r'id="key" readonly value="([0-9a-f]{64})"', answer.text)
    assert key, answer.text[-2000:]
    assert f'download="{name}-1.key"' in answer.text
    # The server wrote the key nowhere: not in the store, its artifacts, or the project.
    needle = key.group(1).encode()
    for path in ui_project.root.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert needle not in path.read_bytes(), path
    monkeypatch.setenv("MLFLOW_TRACKING_URI", ui_project.tracking_uri)
    monkeypatch.setenv("AME_PACKAGE_KEY", key.group(1))
    model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert list(model.predict(pd.DataFrame({"x": [0.0]}))) == [25.0]


def test_encrypted_version_refusals_register_nothing(
    client: TestClient, ui_project: Project
) -> None:
    name = _name()
    _model(client, name)
    token = _csrf(client)
    bad_manifest = json.dumps({"entry_point": "models.loader:load", "files": ["models/gone.bin"]})
    answer = client.post(
        f"/models/{name}/versions/encrypted",
        data={"csrf": token, "key": "generate"},
        files=_package_files(ui_project.root, bad_manifest.encode()),
    )
    assert answer.status_code == 400
    assert "names files the package would not hold: models/gone.bin" in _line(answer.text)
    no_pass = client.post(
        f"/models/{name}/versions/encrypted",
        data={"csrf": token, "key": "passphrase", "passphrase": ""},
        files=_package_files(ui_project.root),
    )
    assert "give the passphrase" in _line(no_pass.text)
    assert list(ui_project.registry().iter_versions(name)) == []


# --- aliases, tags, deletion -----------------------------------------------------------------


def test_tags_alias_and_delete_forms(client: TestClient, ui_project: Project) -> None:
    registry = ui_project.registry()
    name = _name()
    _model(client, name)
    registry.register_from_run(name, ui_project.run_id)
    token = _csrf(client)
    base = f"/models/{name}/versions/1"

    answer = client.post(f"{base}/tags", data={"csrf": token, "set": "owner=risk, tier=gold"})
    assert _line(answer.text, "notice") == f"tagged {name} version 1"
    client.post(f"{base}/tags", data={"csrf": token, "delete": "tier"})
    tags = registry.get_version(name, "1").tags
    assert tags["owner"] == "risk" and "tier" not in tags
    assert "KEY=VALUE" in _line(
        client.post(f"{base}/tags", data={"csrf": token, "set": "oops"}).text
    )

    registry.set_version_tags(name, "1", {"ame.validation": "pending"})
    refused = client.post(
        f"/models/{name}/alias", data={"csrf": token, "alias": "champion", "version": "1"}
    )
    assert refused.status_code == 400
    assert "still pending validation" in _line(refused.text)
    assert 'name="force"' in refused.text  # the warning offers to move it anyway
    assert registry.get_model(name).aliases == {}
    forced = client.post(
        f"/models/{name}/alias",
        data={"csrf": token, "alias": "champion", "version": "1", "force": "yes"},
    )
    assert _line(forced.text, "notice") == f"{name}@champion → version 1"

    in_use = client.post(f"{base}/delete", data={"csrf": token, "confirm": "1"})
    assert in_use.status_code == 409
    assert "alias 'champion' -> version 1" in _line(in_use.text)
    # Use is checked before the confirmation; a free version needs its number typed.
    registry.register_from_run(name, ui_project.run_id)
    free = f"/models/{name}/versions/2/delete"
    unconfirmed = client.post(free, data={"csrf": token, "confirm": "1"})
    assert "type the version number (2)" in _line(unconfirmed.text)
    assert [v.version for v in registry.iter_versions(name)] == ["2", "1"]
    done = client.post(free, data={"csrf": token, "confirm": "2"})
    assert _line(done.text, "notice") == f"deleted {name} version 2"
    assert [v.version for v in registry.iter_versions(name)] == ["1"]


def test_forged_notices_are_not_shown(client: TestClient) -> None:
    page = client.get("/models?notice=your+token+expired,+log+in+at+evil.example&n=00")
    assert "evil.example" not in page.text


# --- deployments and runs ----------------------------------------------------------------------


class _FakeServer(BaseHTTPRequestHandler):
    """A real HTTP server with the two endpoints the UI reads from a deployment."""

    count = 0.0

    def do_GET(self) -> None:
        if self.path == "/v2/health/ready":
            body, kind = b"", "text/plain"
        elif self.path == "/metrics":
            c = type(self).count
            body = (
                "# TYPE ame_request_duration_seconds histogram\n"
                f'ame_request_duration_seconds_count{{route="/invocations"}} {c}\n'
                f'ame_request_duration_seconds_sum{{route="/invocations"}} {c * 0.004}\n'
                f'ame_request_duration_seconds_count{{route="/metrics"}} 999\n'
            ).encode()
            kind = "text/plain; version=0.0.4"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_traffic_meter_gives_rate_and_latency(fake_server: str) -> None:
    from ame.ui.actions import TrafficMeter

    meter = TrafficMeter()
    _FakeServer.count = 10
    first = meter.read(fake_server)
    assert first.requests == 10 and first.rate is None
    assert first.latency_ms == pytest.approx(4.0)
    _FakeServer.count = 30
    second = meter.read(fake_server)
    assert second.requests == 30 and second.rate is not None and second.rate > 0
    assert second.latency_ms == pytest.approx(4.0)
    assert meter.read("http://127.0.0.1:9").error is not None


def test_deployments_page_reads_records_and_metrics(tmp_path: Path, fake_server: str) -> None:
    project = Project(tmp_path, f"sqlite:///{tmp_path / '.ame' / 'mlflow.db'}", "")
    (tmp_path / "ame.yml").write_text("project: deps\n")
    records = tmp_path / ".ame" / "deployments"
    records.mkdir(parents=True)
    port = int(fake_server.rsplit(":", 1)[1])
    record = {
        "model": "iris", "ref": "iris@champion", "version": "3", "url": fake_server,
        "pid": os.getpid(), "port": port, "log": str(tmp_path / "iris.log"),
        "started": 0.0, "workers": 2,
    }  # fmt: skip
    (records / "iris.json").write_text(json.dumps(record))
    _FakeServer.count = 5
    with TestClient(create_app(_config(project))) as c:
        page = c.get("/deployments").text
    assert fake_server in page and "iris@champion" in page
    assert re.search(r'data-label="Replicas">2<', page)
    assert "badge-ready" in page and ">5<" in page


def test_runs_page_lists_task_runs_and_their_logs(ui_project: Project) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(
        tracking_uri=ui_project.tracking_uri, registry_uri=ui_project.tracking_uri
    )
    experiment = client.get_experiment_by_name("uitest")
    assert experiment is not None
    run = client.create_run(
        experiment.experiment_id,
        tags={"ame.kind": "task", "ame.task": "train", "ame.exit_code": "0"},
    )
    client.log_text(run.info.run_id, "epoch 1 loss 0.5\nepoch 2 loss 0.25\n", "task.log")
    client.set_terminated(run.info.run_id, "FINISHED")
    with TestClient(create_app(_config(ui_project, mlflow_url="/mlflow"))) as c:
        listing = c.get("/runs").text
        assert run.info.run_id[:12] in listing and "train" in listing
        assert f"/mlflow/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}" in listing
        log = c.get(f"/runs/{run.info.run_id}/log")
        assert "epoch 2 loss 0.25" in log.text
        assert (
            f"/mlflow/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}" in log.text
        )
        assert c.get("/runs/nope/log").status_code == 404


# --- access ---------------------------------------------------------------------------


def test_token_gate(ui_project: Project) -> None:
    app = TokenGate(create_app(_config(ui_project)), "tok-123")
    with TestClient(app, follow_redirects=False) as c:
        assert c.get("/models").status_code == 401
        assert c.get("/models", headers={"authorization": "Bearer tok-12"}).status_code == 401
        assert c.get("/models", headers={"authorization": "Bearer tok-123"}).status_code == 200
        wrong = c.post("/_login", data={"token": "nope", "next": "/runs"})
        assert wrong.status_code == 401 and "wrong access token" in wrong.text
        offsite = c.post("/_login", data={"token": "tok-123", "next": "//evil.example/"})
        assert offsite.status_code == 303 and offsite.headers["location"] == "/"
        c.cookies.clear()
        link = c.get("/runs?token=tok-123&x=1")
        assert link.status_code == 303 and link.headers["location"] == "/runs?x=1"
        assert "HttpOnly" in link.headers["set-cookie"]
        assert c.get("/models").status_code == 200


def test_loopback_and_token_rules() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")
    assert access_token("127.0.0.1", None) is None
    assert access_token("127.0.0.1", "given") == "given"
    generated = access_token("0.0.0.0", None)
    assert generated and len(generated) >= 24
    assert access_token("0.0.0.0", "mine") == "mine"
    with pytest.raises(UiError):
        access_token("0.0.0.0", "  ")


def test_remote_store_pages_and_mlflow_link(mlflow_server: str, tmp_path: Path) -> None:
    from ame.registry.store import resolve_store

    (tmp_path / "ame.yml").write_text("project: remote-ui\n")
    store = resolve_store(mlflow_server, tmp_path)
    assert not store.embedded
    name = _name()
    config = UiConfig(store=store, project_root=tmp_path, mlflow_url=mlflow_server)
    with TestClient(create_app(config)) as c:
        _model(c, name)
        listing = c.get(f"/models?q={name}").text
        assert f'href="/models/{name}"' in listing
        assert f'href="{mlflow_server}/"' in listing  # MLflow's UI is the server's own


def test_cli_refusals_are_one_line(tmp_path: Path) -> None:
    import subprocess

    from tests.ui.conftest import AME

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AME_UI"))}
    for args, says in (
        (["-f", str(tmp_path / "missing")], "does not exist"),
        (["--host", "0.0.0.0", "--token", " ", "-f", str(tmp_path)], "--token cannot be empty"),
    ):
        (tmp_path / "ame.yml").write_text("project: cli-ui\n")
        done = subprocess.run(
            [AME, "ui", "--port", "1", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and says in lines[0], done.stderr
        assert "Traceback" not in done.stderr


def test_without_a_token_only_loopback_host_names_are_served(ui_project: Project) -> None:
    app = LoopbackHosts(create_app(_config(ui_project)), ("127.0.0.1",))
    with TestClient(app, base_url="http://127.0.0.1:5000") as c:
        assert c.get("/models/new").status_code == 200
        assert c.get("/models/new", headers={"host": "localhost:5000"}).status_code == 200
        assert c.get("/models/new", headers={"host": "[::1]:5000"}).status_code == 200
        # A rebinding page's requests name its own domain.
        assert c.get("/models/new", headers={"host": "evil.example:5000"}).status_code == 421
