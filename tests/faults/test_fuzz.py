"""Issue 13, acceptance: a time-bounded fuzz of ame.yml and package manifests.

A seeded random mutator (so a failure reproduces: the seed and the case are in
the message) changes the repository's own ame.yml files and spec fixtures:
scalars replaced by huge numbers, odd types and YAML punctuation, control
characters inserted, lines duplicated, dropped, swapped or re-indented, keys
misspelt. Every mutation must either load or raise ``SpecError`` whose every
issue is one ``FILE:LINE:COL path: message`` line with a non-empty path; any
other exception is a traceback a user would see. A sample also goes through
the real ``ame validate``. Manifests are mutated the same way and must only
ever be refused with a ``PackageError``.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.conftest import AME, env_for

REPO = Path(__file__).resolve().parents[2]
SEEDS = sorted((REPO / "tests" / "spec" / "fixtures").rglob("*.yml")) + sorted(
    (REPO / "examples").rglob("ame.yml")
)
BUDGET_S = 8.0  # in-process mutations per test
ISSUE = re.compile(r"^[^:\n]+:\d+:\d+ \S+: [^\n]+$")
SCALARS = [
    "9" * 5000, "-1", "0", "1e999999", "1e99999999999", "!!binary x", "~", "[]", "{}",
    '"x"', "true", ".inf", ".nan", "0x1F", "1_000", "*nope", "&a x", "!poetry", "!!int x",
    "99999999999999999999", "'", "{a: [", "- x", "5Gi", "1e4000Mi", "null", "!!python/x y",
    "[" * 200, "0o777", "2001-12-14", "'\\x00'", "|", ">-",
]  # fmt: skip
CHARS = [0x7F, 0x1B, 0x0C, 0x00, 0x85, 0xFEFF, 0x09, 0x2028, 0xD7FF] + [
    ord(c) for c in ":-[]{}#&*!%@|>'\"\\,?"
]


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits of ``text``."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        i = rng.randrange(len(lines))
        line = lines[i]
        if op == 0 and ":" in line:
            lines[i] = line.partition(":")[0] + ": " + rng.choice(SCALARS)
        elif op == 1:
            j = rng.randrange(len(line) + 1)
            lines[i] = line[:j] + chr(rng.choice(CHARS)) + line[j:]
        elif op == 2:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 3 and len(lines) > 1:
            del lines[i]
        elif op == 4:
            lines[i] = " " * rng.randint(0, 7) + line.lstrip()
        elif op == 5:
            key = line.split(":")[0]
            lines[i] = line.replace(key, key + rng.choice(["x", "_", "S", "-", ""]), 1)
        elif op == 6:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = line[: rng.randrange(len(line) + 1)]
    return "\n".join(lines)


def test_seeds_exist() -> None:
    assert len(SEEDS) >= 5


def test_ame_yml_mutations_never_escape_as_tracebacks(tmp_path: Path) -> None:
    from ame.errors import AmeError, SpecError
    from ame.spec.loader import load_project_text

    texts = [p.read_text(encoding="utf-8") for p in SEEDS]
    rng = random.Random(1313)
    deadline = time.monotonic() + BUDGET_S
    cases = issues = 0
    while time.monotonic() < deadline:
        text = mutate(rng.choice(texts), rng)
        cases += 1
        try:
            load_project_text(text, tmp_path / "ame.yml")
        except SpecError as exc:
            assert exc.issues, text
            for issue in exc.issues:
                issues += 1
                assert ISSUE.match(str(issue)), f"case {cases}: {issue!s}\n{text}"
                assert issue.path, f"case {cases}: no field path in {issue!s}"
        except AmeError:
            pass  # a one-line error of its own (an unresolved project, say)
        except Exception as exc:
            pytest.fail(f"case {cases}: {type(exc).__name__}: {exc}\n--- ame.yml ---\n{text}")
    assert cases >= 50 and issues >= cases // 2


def test_a_sample_of_mutations_through_the_cli(tmp_path: Path) -> None:
    texts = [p.read_text(encoding="utf-8") for p in SEEDS]
    rng = random.Random(2626)
    for n in range(6):
        case = tmp_path / f"case{n}"
        case.mkdir()
        text = mutate(rng.choice(texts), rng)
        (case / "ame.yml").write_bytes(text.encode("utf-8", "surrogatepass"))
        result = subprocess.run(
            [AME, "validate"], cwd=case, env=env_for(), capture_output=True, text=True, timeout=60
        )
        assert result.returncode in (0, 2), result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 2:  # (a valid file may print notes of its own)
            for line in result.stderr.splitlines():
                assert ISSUE.match(line) or line.startswith("error: "), line


def test_manifest_mutations_are_refused_with_package_errors(tmp_path: Path) -> None:
    from ame.errors import PackageError
    from ame.packaging.manifest import parse_manifest

    good = {
        "format": "ame-package", "format_version": 1, "package_id": "ab" * 16,
        "created": "2026-01-01T00:00:00Z",
        "model": {"name": "m", "version": "1", "source": "s", "flavor": "python_function",
                  "flavors": ["python_function"], "signature": {"inputs": "[]"}},
        "files": [{"path": "models/MLmodel", "size": 3, "sha256": "0" * 64, "stored_size": 3}],
        "hooks": {"pre": None, "post": None},
    }  # fmt: skip
    base = json.dumps(good, indent=1)
    rng = random.Random(4242)
    deadline = time.monotonic() + BUDGET_S / 2
    cases = 0
    while time.monotonic() < deadline:
        cases += 1
        text = mutate(base, rng)
        try:
            parse_manifest(text.encode("utf-8", "surrogatepass"))
        except PackageError:
            pass
        except Exception as exc:
            pytest.fail(f"case {cases}: {type(exc).__name__}: {exc}\n{text}")
    assert cases >= 50
