"""``manifest.json``: what a package holds, and how it is protected.

The manifest is stored in clear text so ``ame package inspect`` needs no key.
In an encrypted package it is authenticated with HMAC-SHA256 over its
canonical JSON (sorted keys, no spaces, ASCII), under a key derived from the
master key: editing any field (a digest, a size, a path, the model name, the
scrypt salt) is detected. The MAC covers the JSON as read, not as re-dumped by
the model below, so a reader never "repairs" a field before checking it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ame.boundedio import InputLimitError, loads_json
from ame.errors import PackageCorruptError
from ame.packaging.errors import UnsupportedFormatError
from ame.packaging.paths import check_member_path
from ame.packaging.stream import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

FORMAT = "ame-package"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MANIFEST_LIMIT = 16 << 20
ALGORITHM = "AES-256-GCM"
NONCE_DESCRIPTION = "file_index(4, big endian) || chunk_index(8, big endian)"
AAD_DESCRIPTION = (
    "'ame-package-v1\\0' || package_id(16) || len(path)(2) || path || chunk_index(8) || final(1)"
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# A real manifest nests 4 levels; the MAC re-serialises it with the standard
# library, which recurses per level, so anything deep is refused before that.
MAX_MANIFEST_DEPTH = 32


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """One file: its path in the package, plaintext size and SHA-256, and stored size."""

    path: str
    size: int = Field(ge=0)
    sha256: str
    stored_size: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _safe(cls, value: str) -> str:
        return check_member_path(value)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _HEX64.match(value):
            raise ValueError("not a SHA-256 hex digest")
        return value


class Encryption(_Strict):
    """How the files are sealed and which key opens them."""

    algorithm: Literal["AES-256-GCM"]
    chunk_size: int = Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)
    nonce: str
    aad: str
    key_derivation: Literal["HKDF-SHA256"]
    kdf: dict[str, Any]
    key_id: str


class ModelInfo(_Strict):
    """Which registered version the package was built from, and how to load it."""

    name: str
    version: str
    source: str
    flavor: str
    flavors: list[str]
    signature: Optional[dict[str, Any]] = None
    run_id: Optional[str] = None
    requirements: list[str] = Field(default_factory=list)
    mlflow_version: Optional[str] = None


class Hooks(_Strict):
    """The hook files: ``pre`` runs before predict, ``post`` after it."""

    pre: Optional[str] = None
    post: Optional[str] = None


class Auth(_Strict):
    algorithm: Literal["HMAC-SHA256"]
    mac: str


class Manifest(_Strict):
    """The whole manifest; see docs/packaging.md for each field."""

    format: Literal["ame-package"]
    format_version: int
    package_id: str
    created: str
    model: ModelInfo
    files: list[FileEntry]
    hooks: Hooks
    encryption: Optional[Encryption] = None
    auth: Optional[Auth] = None
    # The user's own manifest.json, a file of the package (only written when given).
    user_manifest: Optional[str] = None

    @property
    def encrypted(self) -> bool:
        return self.encryption is not None

    @property
    def package_id_bytes(self) -> bytes:
        return bytes.fromhex(self.package_id)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)


def canonical_bytes(data: dict[str, Any]) -> bytes:
    """The bytes the MAC covers: the manifest without ``auth``, canonical JSON."""
    body = {k: v for k, v in data.items() if k != "auth"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _depth(data: Any) -> int:
    """How deeply lists and dicts nest in ``data`` (counted without recursing)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def parse_manifest(raw: bytes) -> tuple[Manifest, dict[str, Any]]:
    """Parse and check a manifest; return the model and the raw dict (for the MAC).

    The format and its version are checked before anything else, so a package
    from a newer ame says so instead of listing schema errors.
    """
    try:
        data = loads_json(raw)
    except InputLimitError as exc:
        raise PackageCorruptError(f"package corrupt: manifest.json: {exc}") from None
    if _depth(data) > MAX_MANIFEST_DEPTH:
        raise PackageCorruptError(
            f"package corrupt: manifest.json is nested more than {MAX_MANIFEST_DEPTH} levels deep"
        )
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PackageCorruptError("package corrupt: manifest.json is not an ame package manifest")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"unsupported package format version {version!r} (this ame reads version "
            f"{FORMAT_VERSION}); use a newer ame to open it"
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        # (An unsafe path raises UnsafePathError straight through pydantic,
        # which only wraps ValueError and AssertionError.)
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PackageCorruptError(
            f"package corrupt: manifest.json field {where}: {first['msg']}"
        ) from None
    if not re.fullmatch(r"[0-9a-f]{32}", manifest.package_id):
        raise PackageCorruptError("package corrupt: manifest.json has a malformed package_id")
    paths = [f.path for f in manifest.files]
    if len(set(paths)) != len(paths):
        raise PackageCorruptError("package corrupt: manifest.json lists a file twice")
    for hook in (manifest.hooks.pre, manifest.hooks.post):
        if hook is not None and hook not in paths:
            raise PackageCorruptError(f"package corrupt: hook {hook} is not among the files")
    if manifest.user_manifest is not None and manifest.user_manifest not in paths:
        raise PackageCorruptError(
            f"package corrupt: user manifest {manifest.user_manifest} is not among the files"
        )
    if manifest.encrypted != (manifest.auth is not None):
        raise PackageCorruptError("package corrupt: manifest.json encryption and auth disagree")
    return manifest, data


def dump_manifest(data: dict[str, Any]) -> bytes:
    """Serialise a manifest for storage (readable, stable key order)."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()
