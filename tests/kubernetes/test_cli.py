"""``ame render kubernetes``, ``--backend kubernetes --dry-run`` and ``ame image``, via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.kubernetes.conftest import SERVER, Champion, ame, write_project

EXAMPLES = sorted(p.parent for p in (REPO_ROOT / "examples").glob("*/ame.yml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_and_validates(example: Path) -> None:
    done = ame("render", "kubernetes", "-f", str(example), "--tracking-uri", SERVER, "--offline")
    assert done.returncode == 0, done.stderr
    assert "valid for Kubernetes 1.25, 1.37" in done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ame"


def test_embedded_store_is_refused_in_one_line(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", "project: p\ntasks:\n  - name: t\n    runcommand: echo\n"
    )
    done = ame("render", "kubernetes", "-f", str(project), "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "embedded SQLite" in done.stderr and "--tracking-uri" in done.stderr
    assert not (tmp_path / "out").exists()


def test_only_the_named_task_and_unknown_names(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p",
        "project: p\ntasks:\n  - name: a\n    runcommand: echo a\n"
        "  - name: b\n    runcommand: echo b\n",
    )
    done = ame("render", "kubernetes", "-f", str(project), "--tracking-uri", SERVER, "--task", "b")
    assert done.returncode == 0, done.stderr
    (job,) = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert job["metadata"]["name"] == "b"
    done = ame("render", "kubernetes", "-f", str(project), "--tracking-uri", SERVER, "--task", "c")
    assert done.returncode == 2 and "no task 'c' (known: a, b)" in done.stderr
    done = ame("render", "kubernetes", "-f", str(project), "--tracking-uri", SERVER,
               "--kube-version", "1.19")  # fmt: skip
    assert done.returncode == 2 and "the schemas cover 1.25 to 1.37" in done.stderr


def _served_project(tmp_path: Path, model: str) -> Path:
    return write_project(
        tmp_path / "served",
        f"""
        project: served
        models:
          - name: {model}
            deployment:
              replicas: 2
              enableTls: true
              host: m.example.com
        """,
    )


def test_render_pins_the_version_the_champion_names(tmp_path: Path, champion: Champion) -> None:
    project = _served_project(tmp_path, champion.name)
    done = ame("render", "kubernetes", "-f", str(project), "--tracking-uri", champion.tracking_uri,
               "--format", "kserve")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (isvc,) = [d for d in yaml.safe_load_all(done.stdout) if d]
    uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    assert (
        uri.startswith("mlflow-artifacts:/")
        and isvc["metadata"]["labels"]["ame.dev/version"] == "1"
    )
    done = ame("deploy", champion.name, "-f", str(project), "--tracking-uri", champion.tracking_uri,
               "--backend", "kubernetes", "--dry-run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "Ingress", "PodDisruptionBudget"]
    assert (
        docs[0]["spec"]["template"]["spec"]["containers"][0]["command"][2] == f"{champion.name}/1"
    )
    assert "dry run: would apply 4 objects" in done.stderr
    assert "field manager ame" in done.stderr
    # On the cluster the TLS keys work: no "local backend" warning.
    assert "local backend" not in done.stderr


def test_deploy_refuses_before_anything_is_promoted(tmp_path: Path, champion: Champion) -> None:
    project = _served_project(tmp_path, "never_trained")
    done = ame("deploy", "never_trained", "-f", str(project), "--tracking-uri",
               champion.tracking_uri, "--backend", "kubernetes", "--dry-run")  # fmt: skip
    assert done.returncode == 2
    assert "no version of 'never_trained' is promoted to @champion" in done.stderr
    assert done.stdout == ""


def test_task_run_dry_run_shows_the_job_and_a_masked_secret(
    tmp_path: Path, _secret_store: Path
) -> None:
    project = write_project(
        tmp_path / "runp",
        """
        project: runp
        backend:
          kind: kubernetes
          kubernetes: {context: kind-ame, namespace: ml}
        tasks:
          - name: train
            runcommand: python train.py
            secrets: [{key: api_key, injectAs: API_KEY}]
        """,
        **{"train.py": "print('hi')\n"},
    )
    secret_value = "s3cr3t-value-xyz"
    stored = ame("secret", "set", "api_key", input=secret_value)
    assert stored.returncode == 0, stored.stderr
    done = ame("task", "run", "train", "-f", str(project), "--tracking-uri", SERVER, "--dry-run",
               env={"AME_SECRETS_FILE": str(_secret_store)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert secret_value not in done.stdout + done.stderr
    secret, job = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert secret["kind"] == "Secret" and secret["data"] == {"api_key": "***"}
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("train-")
    assert "to kind-ame, namespace ml" in done.stderr
    assert "would upload the project's source to mlflow-artifacts:/ame-sources/" in done.stderr
    # A missing secret stops the run before anything is applied.
    done = ame("task", "run", "train", "-f", str(project), "--tracking-uri", SERVER, "--dry-run",
               env={"AME_SECRETS_FILE": str(tmp_path / "empty.json")})  # fmt: skip
    assert done.returncode == 2 and "secret 'api_key' not found" in done.stderr


def test_image_dockerfile_for_a_task_and_build_without_a_daemon(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "imgp",
        "project: imgp\ntasks:\n  - name: train\n    executor: !poetry {pythonVersion: '3.12', "
        "command: python t.py}\n",
    )
    out = tmp_path / "ctx"
    done = ame("image", "dockerfile", "--task", "train", "-f", str(project), "-o", str(out))
    assert done.returncode == 0, done.stderr
    dockerfile = (out / "Dockerfile").read_text()
    assert "FROM python:3.12-slim" in dockerfile
    assert "uv poetry" in dockerfile and "git" in dockerfile and "USER 1000" in dockerfile
    assert (out / "ame-src" / "src" / "ame" / "__init__.py").is_file()
    assert "docker build -t ame-runner:" in done.stderr
    # The same tag the rendered Job uses.
    job = ame("render", "kubernetes", "-f", str(project), "--tracking-uri", SERVER)
    tag = done.stderr.split("docker build -t ", 1)[1].split()[0]
    assert f"image: {tag}" in job.stdout
    built = ame("image", "build", "--task", "train", "-f", str(project), "-o", str(out),
                env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})  # fmt: skip
    assert built.returncode == 2
    line = built.stderr.strip()
    assert "\n" not in line and line.startswith("error: ")
    assert "docker" in line.lower()


def test_image_dockerfile_for_a_model_holds_its_requirements(
    tmp_path: Path, champion: Champion
) -> None:
    project = _served_project(tmp_path, champion.name)
    out = tmp_path / "serve-ctx"
    done = ame("image", "dockerfile", champion.name, "-f", str(project), "--tracking-uri",
               champion.tracking_uri, "-o", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "numpy==2.0.0" in (out / "requirements.txt").read_text()
    dockerfile = (out / "Dockerfile").read_text()
    assert f'"ame", "serve", "{champion.name}/1"' in dockerfile
    assert f"ame-served-{champion.name}:1" in done.stderr


def test_render_json_free_stdout_is_yaml_only(tmp_path: Path) -> None:
    done = ame("render", "kubernetes", "-f", str(REPO_ROOT / "examples" / "golden"),
               "--tracking-uri", SERVER, "--offline")  # fmt: skip
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Job"}
    json.dumps(docs)  # plain data only
