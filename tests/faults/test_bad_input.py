"""Issue 13, items 4, 6, 7, 9 and 10: hostile and mistaken files give one clear line.

Each case runs the real ``ame`` and checks the exit code (2), that stderr is
one line naming the problem, and that no traceback is printed; the reads that
used to hang (/dev/zero, a fifo) must return at once, so each has a timeout.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.faults.conftest import ame, one_error_line

FAST = 30.0  # seconds: a bounded read answers at once, an unbounded one never does


# --- item 4: symlinks in --files ------------------------------------------------


def test_register_files_refuses_a_symlink_inside_a_folder(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("project: faults_files\n")
    folder = tmp_path / "f8"
    folder.mkdir()
    (folder / "weights.txt").write_text("1\n")
    os.symlink("/etc/passwd", folder / "passwd")
    result = ame(tmp_path, "model", "register", "sym1", "--files", "f8")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "passwd: is a symbolic link (to /etc/passwd)" in line
    assert "never follows links" in line
    listed = ame(tmp_path, "model", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "sym1" not in listed.stdout  # nothing half-made was registered


def test_register_files_refuses_a_symlink_given_directly(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("project: faults_files\n")
    os.symlink("/etc/passwd", tmp_path / "link")
    result = ame(tmp_path, "model", "register", "sym2", "--files", "link")
    assert result.returncode == 2
    assert "link: is a symbolic link (to /etc/passwd)" in one_error_line(result)


# --- items 6 and 7: manifests and key files --------------------------------------


def _package_with_manifest(path: Path, manifest: bytes) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return path


@pytest.mark.parametrize("command", ["verify", "serve", "inspect"])
def test_deeply_nested_manifest_is_one_line(tmp_path: Path, command: str) -> None:
    pkg = _package_with_manifest(tmp_path / "deep.amepkg", b"[" * 100_000 + b"]" * 100_000)
    key = tmp_path / "k.key"
    key.write_text("00" * 32 + "\n")
    key.chmod(0o600)
    keyed = [] if command == "inspect" else ["--key-file", str(key)]
    args = ["package", command, str(pkg), *keyed]
    result = ame(tmp_path, *args, timeout=FAST)
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith("error: package corrupt: manifest.json")
    assert "nested deeper" in line


def test_manifest_nested_within_json_limits_but_too_deep_for_a_manifest(tmp_path: Path) -> None:
    inner = b'{"a":' * 900 + b"1" + b"}" * 900
    body = b'{"format":"ame-package","format_version":1,"x":' + inner + b"}"
    pkg = _package_with_manifest(tmp_path / "deep.amepkg", body)
    result = ame(tmp_path, "package", "inspect", str(pkg), timeout=FAST)
    assert result.returncode == 2
    assert "nested more than 32 levels" in one_error_line(result)


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_key_file_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    pkg = _package_with_manifest(tmp_path / "p.amepkg", b"{}")
    key = {"device": Path("/dev/zero"), "fifo": tmp_path / "fifo", "directory": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(key)
    result = ame(tmp_path, "package", "verify", str(pkg), "--key-file", str(key), timeout=FAST)
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"key file {key} is a {kind}" in line


def test_package_that_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "p.amepkg"
    os.mkfifo(fifo)
    result = ame(tmp_path, "package", "inspect", str(fifo), timeout=FAST)
    assert result.returncode == 2
    assert "is a fifo, not a regular file" in one_error_line(result)


def test_empty_passphrase_variable_says_empty(tmp_path: Path) -> None:
    pkg = _package_with_manifest(tmp_path / "p.amepkg", b"{}")
    result = ame(
        tmp_path, "package", "verify", str(pkg), "--passphrase-env", "FAULTS_PASS",
        env={"FAULTS_PASS": ""},
    )  # fmt: skip
    assert result.returncode == 2
    line = one_error_line(result)
    assert "FAULTS_PASS" in line and "is empty" in line and "not set" not in line
    unset = ame(tmp_path, "package", "verify", str(pkg), "--passphrase-env", "FAULTS_UNSET_VAR")
    assert "is not set" in one_error_line(unset)


# --- items 6, 7 and 10: ame.yml ---------------------------------------------------


def _validate(cwd: Path, *args: str) -> str:
    result = ame(cwd, "validate", *args, timeout=FAST)
    assert result.returncode == 2, result.stdout + result.stderr
    return one_error_line(result)


def test_huge_integer_is_a_positioned_issue(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text(
        "project: x\nmodels:\n  - name: m\n    deployment:\n      replicas: " + "9" * 5000 + "\n"
    )
    line = _validate(tmp_path)
    assert line.startswith("ame.yml:5:17 models[0].deployment.replicas: the number 999")
    assert "5000 digits" in line


def test_del_byte_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_bytes(
        b"project: x\nmodels:\n  - name: m\n    descr\x7fiption: x\n"
    )
    line = _validate(tmp_path)
    assert line == (
        "ame.yml:4:10 models[0]: control character U+007F (DEL) is not allowed "
        "(ame.yml must be printable UTF-8 text)"
    )


@pytest.mark.parametrize("kind", ["directory", "fifo", "dangling symlink"])
def test_ame_yml_that_is_not_a_file_says_what_it_is(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "ame.yml"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        os.symlink(tmp_path / "gone.yml", target)
    line = _validate(tmp_path)
    assert line == f"error: {target} is a {kind}, not a regular file (ame.yml must be a file)"


@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
def test_validate_of_a_stream_returns_at_once(tmp_path: Path, source: str) -> None:
    path = Path(source) if source.startswith("/") else tmp_path / source
    if not path.exists():
        os.mkfifo(path)
    line = _validate(tmp_path, "-f", str(path))
    assert "not a regular file" in line


def test_oversized_ame_yml_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "ame.yml"
    big.write_text("project: x\n" + "# padding\n" * 500_000)
    line = _validate(tmp_path)
    assert "larger than the limit of 4194304 bytes" in line


def test_deep_nesting_in_ame_yml_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("project: x\nmodels: " + "[" * 100_000 + "\n")
    line = _validate(tmp_path)
    assert "nested more than 64 levels deep" in line


# --- item 9: the alias policy, exemption -------------------------------------------


def test_alias_policy_exempts_models_without_validation_task(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text(
        "project: faults_alias\n"
        "models:\n"
        "  - name: novalidation\n"
        "    training: {task: {taskRef: t}}\n"
        "  - name: validated\n"
        "    training: {task: {taskRef: t}}\n"
        "    validation: {task: {taskRef: t}}\n"
        "tasks:\n"
        "  - name: t\n"
        "    executor: !custom {command: 'true'}\n"
    )
    (tmp_path / "w.txt").write_text("1\n")
    for model in ("novalidation", "validated"):
        made = ame(
            tmp_path, "model", "register", model, "--files", "w.txt",
            "--tag", "ame.validation=pending",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    exempt = ame(tmp_path, "model", "alias", "novalidation", "champion", "1")
    assert exempt.returncode == 0, exempt.stderr
    refused = ame(tmp_path, "model", "alias", "validated", "champion", "1")
    assert refused.returncode == 2
    assert "is still pending validation" in one_error_line(refused)
    shown = ame(tmp_path, "model", "show", "validated", "--json")
    assert "champion" not in json.dumps(json.loads(shown.stdout).get("aliases", {}))


def test_register_with_alias_follows_the_alias_policy(tmp_path: Path) -> None:
    """``register --alias`` is refused before anything is registered, like ``model alias``."""
    (tmp_path / "ame.yml").write_text(
        "project: faults_register_alias\n"
        "models:\n"
        "  - name: validated\n"
        "    training: {task: {taskRef: t}}\n"
        "    validation: {task: {taskRef: t}}\n"
        "  - name: novalidation\n"
        "    training: {task: {taskRef: t}}\n"
        "tasks:\n"
        "  - name: t\n"
        "    executor: !custom {command: 'true'}\n"
    )
    (tmp_path / "w.txt").write_text("1\n")
    refused = ame(tmp_path, "model", "register", "validated", "--files", "w.txt",
                  "--alias", "champion")  # fmt: skip
    assert refused.returncode == 2
    assert "is not validated yet" in one_error_line(refused)
    listed = ame(tmp_path, "model", "list", "--json")
    names = [m["name"] for m in json.loads(listed.stdout)["models"]]
    assert "validated" not in names  # nothing half-made
    forced = ame(tmp_path, "model", "register", "validated", "--files", "w.txt",
                 "--alias", "champion", "--force")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    exempt = ame(tmp_path, "model", "register", "novalidation", "--files", "w.txt",
                 "--alias", "champion")  # fmt: skip
    assert exempt.returncode == 0, exempt.stderr
