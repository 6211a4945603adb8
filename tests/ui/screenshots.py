"""Screenshots of every ``ame ui`` page at a desktop and a phone width, for docs/ui.md.

Not a test: run ``python -m tests.ui.screenshots [OUT_DIR]`` (default
``docs/img/ui``). It builds a small project (models with files, run and
encrypted versions, a champion, validation states, a task run, a deployment
record answered by a real local HTTP server), starts ``ame ui`` and saves a
PNG of each page at 1280 and 390 pixels wide.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, make_project, start_ui, stop_ui
from tests.ui.test_pages import _FakeServer

WIDTHS = {"desktop": 1280, "narrow": 390}


def main(out: Path) -> None:
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    project = make_project(Path(tempfile.mkdtemp()) / "shop")
    registry = project.registry()
    registry.create_model("fraud", "Card-fraud classifier, retrained weekly")
    for _ in range(3):
        registry.register_from_run("fraud", project.run_id)
    registry.set_version_tags("fraud", "1", {"ame.validation": "passed", "team": "risk"})
    registry.set_version_tags(
        "fraud", "2", {"ame.validation": "passed", "ame.code_version": "a1b2c3d"}
    )
    registry.set_version_tags("fraud", "3", {"ame.validation": "failed"})
    registry.set_alias("fraud", "champion", "2", validation_task=False)
    registry.create_model("stockpred", "Time-series prediction (seed 004)")
    registry.register_from_files("stockpred", [project.root / "plain"])
    registry.create_model("churn", "")

    client = MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)
    experiment = client.get_experiment_by_name("uitest")
    assert experiment is not None
    run = client.create_run(
        experiment.experiment_id,
        tags={"ame.kind": "task", "ame.task": "train", "ame.exit_code": "0"},
    )
    client.log_text(
        run.info.run_id,
        "loading data\nepoch 1 loss 0.51\nepoch 2 loss 0.27\nsaved model\n",
        "task.log",
    )
    client.set_terminated(run.info.run_id, "FINISHED")

    fake = ThreadingHTTPServer(("127.0.0.1", 0), _FakeServer)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    records = project.root / ".ame" / "deployments"
    records.mkdir(parents=True, exist_ok=True)
    record = {
        "model": "fraud", "ref": "fraud@champion", "version": "2", "url": url,
        "pid": os.getpid(), "port": fake.server_address[1], "log": "", "started": 0.0,
        "workers": 2,
    }  # fmt: skip
    (records / "fraud.json").write_text(json.dumps(record))
    _FakeServer.count = 1200

    ui = start_ui(project)
    token_ui = start_ui(project, "--no-mlflow", "--token", "t", host="0.0.0.0", health_token="t")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            for label, width in WIDTHS.items():
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                page.set_default_timeout(90_000)

                def shot(name: str, path: str | None = None, *, _page=page, _label=label) -> None:
                    if path is not None:
                        _page.goto(ui.url + path)
                    _page.screenshot(path=str(out / f"{name}-{_label}.png"), full_page=True)

                shot("models", "/models")
                _FakeServer.count += 37
                shot("new-model", "/models/new")
                page.goto(ui.url + "/models/fraud")
                page.locator("#v3 summary").click()
                shot("model")
                page.select_option("select[name=version]", "3")
                page.click("button:has-text('Move alias')")
                page.wait_for_selector("#error")
                shot("model-alias-warning")
                shot("new-version-files", "/models/churn/versions/new?from=files")
                shot("new-version-run", "/models/churn/versions/new?from=run")
                shot("new-version-encrypted", "/models/churn/versions/new?from=encrypted")
                if label == "desktop":
                    root = project.root
                    page.set_input_files(
                        "#model_files",
                        [str(root / "models" / "loader.py"), str(root / "models" / "offset.txt")],
                    )
                    page.set_input_files(
                        "#hook_files",
                        [str(root / "hooks" / "pre.py"), str(root / "hooks" / "post.py")],
                    )
                    page.set_input_files("#manifest", str(root / "manifest.json"))
                    page.click("button:has-text('Create encrypted version')")
                    page.wait_for_selector("#download-key")
                    shot("key-once")
                shot("deployments", "/deployments")
                shot("runs", "/runs")
                shot("run-log", f"/runs/{run.info.run_id}/log")
                page.goto(ui.url + "/mlflow/#/experiments")
                page.wait_for_selector("text=uitest")
                shot("mlflow")
                page.goto(token_ui.url + "/models")
                shot("token")
                context.close()
            browser.close()
    finally:
        stop_ui(ui)
        stop_ui(token_ui)
        fake.shutdown()
    print(
        "\n".join(
            sorted(p.name for p in out.glob("*.png") if re.search(r"-(desktop|narrow)", p.name))
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/ui"))
