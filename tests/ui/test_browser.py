"""``ame ui`` in a real headless Chromium: the pages a person uses, end to end.

One ``ame ui`` process (real uvicorn on 127.0.0.1, embedded store, MLflow's UI
mounted) serves the whole module; each test opens a fresh browser context
(no cookies shared) and checks what the page shows and what the registry,
read back through the library, now holds.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ui.conftest import Project, UiServer, launch_ui, start_ui, stop_ui, wait_for_bearer

pytestmark = pytest.mark.xdist_group("ui-browser")

# Small, so the over-the-cap upload is cheap; the seed files are far below it.
CAP_MB = "0.1"


@pytest.fixture(scope="module")
def server(ui_project: Project) -> Iterator[UiServer]:
    ui = start_ui(ui_project, "--max-upload-mb", CAP_MB)
    try:
        yield ui
    finally:
        stop_ui(ui)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    try:
        yield tab
    finally:
        context.close()


def _name() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


def _create_model(page: Any, server: UiServer, name: str, description: str = "") -> None:
    page.goto(f"{server.url}/models")
    page.click("text=New model")
    page.fill("#name", name)
    page.fill("#description", description)
    page.click("button:has-text('Create')")
    page.wait_for_selector(f"h1:has-text('{name}')")


def _model_with_two_versions(page: Any, server: UiServer, ui_project: Project) -> str:
    """A new model made on its page, then two versions from the project's run (page shown)."""
    name = _name()
    registry = ui_project.registry()
    _create_model(page, server, name)
    for _ in range(2):
        registry.register_from_run(name, ui_project.run_id)
    return name


def _delete(page: Any, version: str, typed: str) -> None:
    """Open version ``version``'s delete form, type ``typed`` as the confirmation, send it."""
    row = page.locator(f"#v{version}")
    row.locator("summary").click()
    row.locator("input[name=confirm]").fill(typed)
    row.locator(f"button:has-text('Delete version {version}')").click()


def _notice(page: Any) -> str:
    return page.inner_text(".notice")


def test_create_model_lists_it_and_search_finds_it(page: Any, server: UiServer) -> None:
    name = _name()
    _create_model(page, server, name, "card fraud classifier")
    assert _notice(page) == f"created model {name}"
    page.goto(f"{server.url}/models?q={name[2:]}")
    row = page.locator("table.models tbody tr")
    assert row.count() == 1
    assert name in row.inner_text() and "card fraud classifier" in row.inner_text()
    page.fill("#q", "no-such-model-anywhere")
    page.click("button:has-text('Search')")
    assert "No model matches" in page.inner_text("main")


def test_version_from_uploaded_files_then_from_a_run(
    page: Any, server: UiServer, ui_project: Project
) -> None:
    name = _name()
    _create_model(page, server, name)
    page.click("text=New version")
    page.set_input_files(
        "#files",
        [
            str(ui_project.root / "plain" / "hook.py"),
            str(ui_project.root / "plain" / "weights.txt"),
        ],
    )
    page.fill("#tags", "team=risk")
    page.click("button:has-text('Create version')")
    page.wait_for_selector(".notice")
    assert _notice(page) == f"registered {name} version 1"
    row = page.locator("#v1")
    assert "files: hook.py, weights.txt" in row.inner_text()
    assert "team=risk" in row.inner_text()

    page.click("text=New version")
    page.click("text=From a run")
    page.check(f"input[value='{ui_project.run_id}/model']")
    page.click("button:has-text('Create version')")
    page.wait_for_selector(".notice")
    assert _notice(page) == f"registered {name} version 2"
    assert f"run {ui_project.run_id[:12]}" in page.locator("#v2").inner_text()
    assert page.locator(f"#v2 [title='{ui_project.run_id}']").count() == 1

    registry = ui_project.registry()
    assert registry.get_version(name, "1").tags["ame.source"] == "files"
    assert registry.get_version(name, "2").run_id == ui_project.run_id


def test_encrypted_version_with_passphrase_opens_only_with_it(
    page: Any, server: UiServer, ui_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc
    import pandas as pd

    name = _name()
    _create_model(page, server, name)
    page.click("text=New version")
    page.click("text=Packaged-encrypted")
    root = ui_project.root
    page.set_input_files(
        "#model_files", [str(root / "models" / "loader.py"), str(root / "models" / "offset.txt")]
    )
    page.set_input_files(
        "#hook_files", [str(root / "hooks" / "pre.py"), str(root / "hooks" / "post.py")]
    )
    page.set_input_files("#manifest", str(root / "manifest.json"))
    page.check("#key-passphrase")
    page.fill("#passphrase", "correct horse battery staple")
    page.click("button:has-text('Create encrypted version')")
    page.wait_for_selector(".notice")
    assert _notice(page).startswith(f"registered {name} version 1 (packaged-encrypted")
    assert "packaged-encrypted" in page.locator("#v1").inner_text()

    uri = f"models:/{name}/1"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", ui_project.tracking_uri)
    # Process-wide, and ahead of the variable: an earlier test may have set others.
    mlflow.set_tracking_uri(ui_project.tracking_uri)
    mlflow.set_registry_uri(ui_project.tracking_uri)
    for var in ("AME_PACKAGE_KEY_FILE", "AME_PACKAGE_KEY", "AME_PACKAGE_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(Exception, match="needs its key"):
        mlflow.pyfunc.load_model(uri)
    monkeypatch.setenv("AME_PACKAGE_PASSPHRASE", "not the passphrase")
    with pytest.raises(Exception, match=r"(?i)wrong|key"):
        mlflow.pyfunc.load_model(uri)
    monkeypatch.setenv("AME_PACKAGE_PASSPHRASE", "correct horse battery staple")
    model = mlflow.pyfunc.load_model(uri)
    # pre adds 1, the model doubles and adds 0.5, post multiplies by 10.
    assert list(model.predict(pd.DataFrame({"x": [1.0, 2.0]}))) == [45.0, 65.0]


def test_move_champion_warns_on_an_unvalidated_version(
    page: Any, server: UiServer, ui_project: Project
) -> None:
    name = _model_with_two_versions(page, server, ui_project)
    registry = ui_project.registry()
    registry.set_version_tags(name, "1", {"ame.validation": "passed"})
    registry.set_version_tags(name, "2", {"ame.validation": "failed"})
    page.reload()

    page.select_option("select[name=version]", "1")
    page.click("button:has-text('Move alias')")
    page.wait_for_selector(".notice")
    assert _notice(page) == f"{name}@champion → version 1"
    assert "@champion" in page.locator("#v1").inner_text()

    page.select_option("select[name=version]", "2")
    page.click("button:has-text('Move alias')")
    page.wait_for_selector("#error")
    assert "failed validation" in page.inner_text("#error")
    assert registry.get_model(name).aliases == {"champion": "1"}
    page.check("input[name=force]")
    page.click("button:has-text('Move alias')")
    page.wait_for_selector(".notice")
    assert "@champion" in page.locator("#v2").inner_text()
    assert registry.get_model(name).aliases == {"champion": "2"}


def test_delete_needs_the_number_and_is_refused_while_in_use(
    page: Any, server: UiServer, ui_project: Project
) -> None:
    name = _model_with_two_versions(page, server, ui_project)
    registry = ui_project.registry()
    registry.set_alias(name, "champion", "1", validation_task=False)
    page.reload()

    _delete(page, "2", typed="1")  # the wrong number
    page.wait_for_selector("#error")
    assert "type the version number (2)" in page.inner_text("#error")
    assert page.locator("#v2").count() == 1

    _delete(page, "1", typed="1")
    page.wait_for_selector("#error")
    assert page.inner_text("#error") == (
        f"{name}/1 is in use (alias 'champion' -> version 1); move or delete those first"
    )
    assert page.locator("#v1").count() == 1

    _delete(page, "2", typed="2")
    page.wait_for_selector(".notice")
    assert _notice(page) == f"deleted {name} version 2"
    assert page.locator("#v2").count() == 0
    assert [v.version for v in registry.iter_versions(name)] == ["1"]


def test_form_without_csrf_token_is_refused(
    page: Any, server: UiServer, ui_project: Project
) -> None:
    name = _name()
    page.goto(f"{server.url}/models/new")
    page.fill("#name", name)
    page.locator("input[name=csrf]").evaluate("e => e.remove()")
    with page.expect_response(re.compile(r"/models/new$")) as answer:
        page.click("button:has-text('Create')")
    assert answer.value.status == 403
    assert "CSRF token is missing" in page.inner_text("#error")
    assert not list(ui_project.registry().iter_models(f"name = '{name}'"))


def test_upload_over_the_cap_is_refused_and_registers_nothing(
    page: Any, server: UiServer, ui_project: Project, tmp_path: Any
) -> None:
    name = _name()
    _create_model(page, server, name)
    big = tmp_path / "weights.bin"
    big.write_bytes(b"\0" * 300_000)  # three times the 0.1 MiB cap
    page.click("text=New version")
    page.set_input_files("#files", [str(big)])
    with page.expect_response(re.compile(r"/versions/files$")) as answer:
        page.click("button:has-text('Create version')")
    assert answer.value.status == 413
    assert "larger than this server's limit" in page.inner_text("#error")
    assert list(ui_project.registry().iter_versions(name)) == []


def test_mlflow_ui_is_reachable_from_the_same_server(page: Any, server: UiServer) -> None:
    page.goto(f"{server.url}/models")
    page.click("text=MLflow UI")
    page.wait_for_url(re.compile(r"/mlflow/"))
    assert page.title() == "MLflow"
    experiments = httpx.get(
        f"{server.url}/mlflow/ajax-api/2.0/mlflow/experiments/search?max_results=10"
    ).json()
    assert "uitest" in {e["name"] for e in experiments["experiments"]}


def test_token_is_required_on_0000_even_over_loopback(browser: Any, ui_project: Project) -> None:
    ui = start_ui(
        ui_project,
        "--no-mlflow",
        "--token",
        "s3cret-token",
        host="0.0.0.0",
        health_token="s3cret-token",
    )
    try:
        assert httpx.get(f"{ui.url}/models").status_code == 401
        assert (
            httpx.get(f"{ui.url}/models", headers={"authorization": "Bearer nope"}).status_code
            == 401
        )
        context = browser.new_context()
        page = context.new_page()
        try:
            answer = page.goto(f"{ui.url}/models")
            assert answer is not None and answer.status == 401
            page.fill("#token", "wrong")
            page.click("button:has-text('Open')")
            assert "wrong access token" in page.inner_text(".error")
            page.fill("#token", "s3cret-token")
            page.click("button:has-text('Open')")
            page.wait_for_selector("h1:has-text('Models')")
            assert page.url == f"{ui.url}/models"
        finally:
            context.close()
    finally:
        stop_ui(ui)


def test_a_generated_token_is_printed_when_bound_off_loopback(ui_project: Project) -> None:
    ui = launch_ui(ui_project, "--no-mlflow", host="0.0.0.0")
    try:
        deadline = time.monotonic() + 120
        found = None
        while found is None and time.monotonic() < deadline and ui.proc.poll() is None:
            found = re.search(r"access token: (\S+)", ui.output())
            if found is None:
                time.sleep(0.2)
        assert found is not None, ui.output()
        token = found.group(1)
        wait_for_bearer(f"{ui.url}/_health", token, ui.proc)
        assert httpx.get(f"{ui.url}/models", timeout=60).status_code == 401
        # The printed link logs in once, sets the cookie and drops the token from the URL.
        with httpx.Client(timeout=60) as client:
            first = client.get(f"{ui.url}/models?token={token}")
            assert first.status_code == 303 and first.headers["location"] == "/models"
            assert client.get(f"{ui.url}/models").status_code == 200
    finally:
        stop_ui(ui)
