"""The registered chat model served by the real ``ame serve``, answering ``/invocations``."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import AME, free_port
from tests.llm.llm_fake_server import FakeOpenAI, Registered


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ame serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(registered: Registered, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ame serve NAME/VERSION`` in a subprocess whose only key is OPENAI_API_KEY."""
    log = tmp_path_factory.mktemp("llm-serve") / "serve.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"OPENAI_API_KEY": registered.key, "MLFLOW_DISABLE_TELEMETRY": "true"})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                AME,
                "serve",
                f"{registered.name}/{registered.version}",
                "--port",
                str(port),
                "--tracking-uri",
                registered.store.tracking_uri,
            ],
            cwd=registered.project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/ping", proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_served_model_answers_invocations(
    served: str, registered: Registered, fake_openai: FakeOpenAI
) -> None:
    reply = httpx.post(
        f"{served}/invocations",
        json={"inputs": ["hello served", "again"], "params": {"max_tokens": 7}},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    rows = reply.json()["predictions"]
    assert [r["text"] for r in rows] == ["echo: hello served", "echo: again"]
    assert rows[0]["model"] == "fake-gpt" and rows[0]["total_tokens"] == 5
    assert rows[0]["error"] is None
    assert {b["max_tokens"] for b in fake_openai.script.bodies()} == {7}
    assert {r["auth"] for r in fake_openai.script.requests} == {f"Bearer {registered.key}"}

    # A table with a prompt column, one failing item: an error row, not a failed request.
    fake_openai.script.fail_prompts["broken"] = 500
    reply = httpx.post(
        f"{served}/invocations",
        json={"dataframe_split": {"columns": ["prompt"], "data": [["fine"], ["broken"]]}},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    fine, broken = reply.json()["predictions"]
    assert fine["text"] == "echo: fine"
    assert broken["text"] is None and broken["error_type"] == "InternalServerError"

    # OpenAI-style chat body (MLflow's unified LLM input): answered without a wrapper.
    convo = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "chat"}]
    reply = httpx.post(
        f"{served}/invocations", json={"messages": convo, "max_tokens": 9}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    assert [r["text"] for r in reply.json()] == ["echo: chat"]
    sent = fake_openai.script.bodies("chat")[0]
    assert sent["messages"] == convo and sent["max_tokens"] == 9


@pytest.mark.slow
def test_served_model_reports_a_rejected_key_as_an_error(
    served: str, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script.expected_key = "sk-some-other-key"
    reply = httpx.post(f"{served}/invocations", json={"inputs": ["who am i"]}, timeout=30)
    # MLflow's scoring protocol answers a failed predict with 400 and the traceback,
    # which names our error and the variable to fix.
    assert reply.status_code == 400, reply.text
    assert "LLMAuthError" in reply.text and "OPENAI_API_KEY" in reply.text
    assert len(fake_openai.script.requests) == 1  # a 401 is not retried
