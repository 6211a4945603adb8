"""``ame validate`` and ``ame show`` through the real console script, and import lightness."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ame.spec import Project, load_project

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"
Write = Callable[..., Path]


def run(ame_bin: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ame_bin, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_validate_ok(ame_bin: str) -> None:
    file = SEEDS / "002-1-validation" / "ame.yml"
    done = run(ame_bin, "validate", "-f", str(file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ok: {file} (1 model, 2 tasks)"


def test_validate_finds_ame_yml_upwards(ame_bin: str, write_project: Write) -> None:
    file = write_project("project: up\nmodels:\n  - name: m\n")
    deep = file.parent / "src" / "pkg"
    deep.mkdir(parents=True)
    done = run(ame_bin, "validate", cwd=deep)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ") and "(1 model, 0 tasks)" in done.stdout


def test_validate_without_a_project_is_a_one_line_error(ame_bin: str, tmp_path: Path) -> None:
    done = run(ame_bin, "validate", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: no ame.yml or ame.yaml in")
    assert "Traceback" not in done.stderr


def test_validate_lists_every_issue(ame_bin: str, write_project: Write) -> None:
    file = write_project(
        """
        project: p
        models:
          - name: m
            deployment:
              replica: 3
              resources: {memory: 10 gigs}
        tasks:
          - {name: t, timeout: soon}
        """
    )
    done = run(ame_bin, "validate", "-f", str(file))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"{file}:6:7 models[0].deployment: unknown key 'replica' (did you mean 'replicas'?)",
        f"{file}:7:27 models[0].deployment.resources.memory: '10 gigs' is not a quantity: "
        "expected a number of bytes with an optional unit, such as 1000, 10G, 512Mi or 1.5Gi",
        f"{file}:9:24 tasks[0].timeout: 'soon' is not a duration: expected seconds or a value "
        "such as 30s, 5m, 1h or 1h30m",
    ]


def test_show_json_loads_back(ame_bin: str) -> None:
    file = SEEDS / "000-1-training" / "ame.yml"
    done = run(ame_bin, "show", "-f", str(file), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["models"][0]["training"]["task"]["executor"]["pythonVersion"] == "3.11"
    assert data["tasks"][0]["resources"]["nvidia.com/gpu"] == 1
    assert Project.model_validate(data) == load_project(file)


def test_show_tree(ame_bin: str) -> None:
    done = run(ame_bin, "show", "-f", str(SEEDS / "002-1-validation"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "sklearn_logistic_regression" in out
    assert "logreg" in out and "mlflow_validation" in out
    assert "!mlflow" in out and "python train.py" in out
    assert "autoDeploy: True" in out


def test_show_invalid_file_exits_2(ame_bin: str, write_project: Write) -> None:
    file = write_project("project: p\nmodels: nope\n")
    done = run(ame_bin, "show", "-f", str(file), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert (
        done.stderr.strip()
        == f"{file}:2:9 models: expected a list of models, got the string 'nope'"
    )


def test_help_shows_examples(ame_bin: str) -> None:
    for command in ("validate", "show"):
        done = run(ame_bin, command, "--help")
        assert done.returncode == 0
        assert f"Example: ame {command} -f" in done.stdout


def test_import_spec_does_not_import_mlflow() -> None:
    code = "import ame, ame.spec, ame.cli.project_cmds, sys; assert 'mlflow' not in sys.modules"
    code += "; assert 'croniter' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_only_the_named_group_is_loaded_yet_every_command_still_works(ame_bin: str) -> None:
    # The root help still lists every group; a group's help shows only its own.
    root = run(ame_bin, "--help")
    assert root.returncode == 0
    for name in ("task", "model", "serve", "package", "train", "status", "deployment"):
        assert name in root.stdout
    model = run(ame_bin, "model", "--help")
    assert model.returncode == 0 and "validate" in model.stdout  # from lifecycle_cmds
    typo = run(ame_bin, "tsk", "run")
    assert typo.returncode == 2 and "No such command 'tsk'" in typo.stderr


def test_usage_mistakes_are_one_line_errors_with_exit_2(ame_bin: str) -> None:
    cases = {
        ("task", "run"): "error: Missing argument 'name'. (see 'ame task run --help')",
        ("validate", "--bogus"): "error: No such option: --bogus (see 'ame validate --help')",
        ("tsk",): "error: No such command 'tsk'. Did you mean 'task'? (see 'ame --help')",
    }
    for args, line in cases.items():
        done = run(ame_bin, *args)
        assert (done.returncode, done.stderr.strip()) == (2, line), args
    port = run(ame_bin, "serve", "m", "--port", "abc")
    assert port.returncode == 2 and len(port.stderr.strip().splitlines()) == 1
    assert "Traceback" not in port.stderr and "--port" in port.stderr
    bare = run(ame_bin, "task")
    assert bare.returncode == 2 and "run" in bare.stdout and "Traceback" not in bare.stderr
