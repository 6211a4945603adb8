"""``inspect`` and ``verify``: what a package claims, and whether it keeps its word."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ame.packaging.opener import make_secret
from ame.packaging.reader import FileCheck, PackageReader
from ame.packaging.stream import Progress


def inspect_package(path: str | Path) -> dict[str, Any]:
    """The manifest as stored, after checking its format and paths; needs no key.

    Nothing is authenticated here (that needs the key): use ``verify_package``
    to know the manifest is genuine.
    """
    with PackageReader(path) as reader:
        return reader.raw_manifest


def verify_package(
    path: str | Path,
    *,
    key: Optional[bytes | str] = None,
    key_file: Optional[str | Path] = None,
    passphrase: Optional[str] = None,
    progress: Optional[Progress] = None,
) -> list[FileCheck]:
    """Check the key, the manifest's MAC, every chunk's tag and every file's SHA-256.

    Raises ``WrongKeyError`` or ``PackageCorruptError`` on the first failure;
    returns one ``FileCheck`` per file when everything holds. An unencrypted
    package is checked against its digests only (it has no authentication).
    """
    with PackageReader(path) as reader:
        reader.unlock(make_secret(key, key_file, passphrase))
        return reader.verify(progress)
