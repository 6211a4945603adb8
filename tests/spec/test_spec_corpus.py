"""The malformed-file corpus: every file fails with an issue at the right line.

Each file in ``corpus/`` starts with ``# expect: LINE: TEXT``: one reported
issue must be on LINE and contain TEXT (in its path or message). Files that
cannot carry a header (the empty one) are listed in ``NO_HEADER``. All of them
go through ``load_project``; a handful also through the real ``ame validate``
console script, to hold the CLI contract: exit 2 and one
``FILE:LINE:COL path: message`` line per issue on stderr.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ame.errors import SpecError
from ame.spec import load_project

CORPUS = Path(__file__).resolve().parent / "corpus"
FILES = sorted(CORPUS.glob("*.yml"))
NO_HEADER = {"34-empty.yml": (1, "the file is empty")}
ISSUE_LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+)(?: (?P<path>\S+))?: (?P<msg>.+)$"
)


def expectation(file: Path) -> tuple[int, str]:
    """The (line, text) a corpus file declares in its first line."""
    if file.name in NO_HEADER:
        return NO_HEADER[file.name]
    match = re.match(rb"# expect: (\d+): (.*)\n", file.read_bytes())
    assert match, f"{file.name} has no '# expect: LINE: TEXT' header"
    return int(match[1]), match[2].decode()


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 40


@pytest.mark.parametrize("file", FILES, ids=[f.name for f in FILES])
def test_corpus_file_reports_its_issue(file: Path) -> None:
    line, text = expectation(file)
    with pytest.raises(SpecError) as caught:
        load_project(file)
    issues = caught.value.issues
    assert issues, "a SpecError must carry at least one issue"
    assert any(i.line == line and text in f"{i.path}: {i.message}" for i in issues), "\n".join(
        str(i) for i in issues
    )
    for issue in issues:
        assert issue.file.endswith(file.name)
        assert issue.line >= 1 and issue.column >= 1
        assert "\n" not in str(issue)
        assert ISSUE_LINE.match(str(issue)), str(issue)


CLI_CASES = [
    "01-typo-deployment-replica.yml",
    "13-unit-memory-GB.yml",
    "25-template-cycle.yml",
    "27-yaml-unclosed-flow.yml",
    "31-tag-unknown-conda.yml",
    "34-empty.yml",
    "36-binary-nul.yml",
]


@pytest.mark.parametrize("name", CLI_CASES)
def test_ame_validate_prints_one_line_per_issue_and_exits_2(name: str, ame_bin: str) -> None:
    file = CORPUS / name
    line, text = expectation(file)
    done = subprocess.run(
        [ame_bin, "validate", "-f", str(file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    parsed = [ISSUE_LINE.match(out) for out in lines]
    assert all(parsed), done.stderr
    assert any(
        p is not None and p["file"] == str(file) and int(p["line"]) == line and text in out
        for p, out in zip(parsed, lines, strict=True)
    ), done.stderr
