"""One module owns the local deployment record format: ``ame.backends.local``.

Three modules used to read or write ``.ame/deployments/*.json`` (the local
backend, the registry and the server) and drifted apart. The check is on the
source, so a new reader anywhere else fails here, with its file named.
"""

from __future__ import annotations

import re
from pathlib import Path

import ame

SRC = Path(ame.__file__).parent
OWNER = SRC / "backends" / "local.py"
# the record folder spelled as a path in code (``/ "deployments"``, ``.ame/deployments``)
# or the owner's constants imported by name
PATTERN = re.compile(
    r"""/\s*["']deployments["']|\.ame/deployments|DEPLOYMENTS_DIR|_read_record|_write_record"""
)


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of ``path`` outside docstrings and comments (a doc may name the folder)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'"""[\s\S]*?"""', lambda m: "\n" * m.group(0).count("\n"), text)
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if PATTERN.search(code):
            found.append((number, line.strip()))
    return found


def test_only_the_local_backend_touches_deployment_records() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}: {line}"
        for path in sorted(SRC.rglob("*.py"))
        if path != OWNER
        for number, line in _code_lines(path)
    ]
    assert offenders == []
    assert _code_lines(OWNER), "the owner itself must still define the record's place"


def test_the_registry_and_the_server_import_no_backend() -> None:
    for folder in (SRC / "registry", SRC / "serving"):
        for path in folder.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            reaches = re.search(r"^\s*(from|import)\s+ame\.backends", text, re.MULTILINE)
            assert reaches is None, f"{path.relative_to(SRC)} reaches up into backends"
