"""Reading a package: index, manifest, key check, and authenticated file streams.

The order of checks is what makes the errors useful: the manifest's format
first (a newer package says so), then the key id (a wrong key says so, before
anything is decrypted), then the manifest's MAC (an edited manifest is corrupt),
then each member against the manifest (missing, truncated or extra members),
and finally each chunk's GCM tag as it is read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ame.boundedio import describe_kind
from ame.errors import PackageCorruptError, PackageError, WrongKeyError
from ame.packaging.archive import Member, read_index, read_member
from ame.packaging.errors import KeyRequiredError
from ame.packaging.keys import PackageKeys, Secret, derive_package_keys
from ame.packaging.manifest import (
    MANIFEST_LIMIT,
    MANIFEST_NAME,
    FileEntry,
    canonical_bytes,
    parse_manifest,
)
from ame.packaging.stream import (
    DEFAULT_CHUNK_SIZE,
    ChunkDecryptor,
    Progress,
    decrypt_span,
    stored_size,
)


def manifest_mac(keys: PackageKeys, raw: dict[str, Any]) -> str:
    """HMAC-SHA256 of the manifest's canonical bytes under the manifest key."""
    return hmac.new(keys.manifest, canonical_bytes(raw), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """The result of verifying one file."""

    path: str
    size: int
    sha256: str
    ok: bool


class PackageReader:
    """An open package file. Use as a context manager; nothing is decrypted until asked."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            # Non-blocking: a fifo must be refused, not waited on for a writer.
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise PackageError(f"package {self.path} does not exist") from None
        except OSError as exc:
            raise PackageError(f"cannot open package {self.path}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            os.close(self._fd)
            raise PackageError(
                f"package {self.path} is {describe_kind(self.path)}, not a regular file"
            )
        try:
            self._index = read_index(str(self.path))
            if MANIFEST_NAME not in self._index:
                raise PackageCorruptError(
                    f"package corrupt: {self.path} has no manifest.json "
                    "(truncated, or not a package)"
                )
            raw = read_member(self._fd, self._index[MANIFEST_NAME], MANIFEST_LIMIT)
            self.manifest, self._raw = parse_manifest(raw)
        except BaseException:
            os.close(self._fd)
            raise
        self._keys: Optional[PackageKeys] = None

    # -- life cycle ----------------------------------------------------------

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PackageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys ------------------------------------------------------------------

    @property
    def raw_manifest(self) -> dict[str, Any]:
        """The manifest exactly as stored (for ``inspect``)."""
        return dict(self._raw)

    def unlock(self, secret: Optional[Secret]) -> None:
        """Check ``secret`` against the key id and the manifest MAC; keep the derived keys.

        An unencrypted package needs no secret (one given is ignored).
        """
        enc = self.manifest.encryption
        if enc is None:
            return
        if secret is None or (secret.key is None and secret.passphrase is None):
            raise KeyRequiredError(
                f"package {self.path} is encrypted (key id {enc.key_id}): give a key file, "
                "a key or a passphrase"
            )
        master = secret.master_key(enc.kdf)
        keys = derive_package_keys(master, self.manifest.package_id_bytes)
        if not hmac.compare_digest(keys.key_id, enc.key_id):
            raise WrongKeyError(
                f"wrong key for package (key id {enc.key_id}; the "
                f"{'passphrase' if secret.key is None else 'key'} given has key id {keys.key_id})"
            )
        assert self.manifest.auth is not None  # parse_manifest pairs them
        if not hmac.compare_digest(manifest_mac(keys, self._raw), self.manifest.auth.mac):
            raise PackageCorruptError(
                "package corrupt: manifest.json failed authentication (it was edited)"
            )
        self._keys = keys

    # -- members ---------------------------------------------------------------

    @property
    def chunk_size(self) -> int:
        enc = self.manifest.encryption
        return enc.chunk_size if enc is not None else DEFAULT_CHUNK_SIZE

    def check_members(self) -> None:
        """Every manifest file is a member of the right stored size; nothing else is there."""
        listed = {f.path for f in self.manifest.files} | {MANIFEST_NAME}
        for name in self._index:
            if name not in listed:
                shown = name.encode("unicode_escape").decode("ascii")
                raise PackageCorruptError(
                    f"package refused: member '{shown}' is not in the manifest"
                )
        for entry in self.manifest.files:
            member = self._index.get(entry.path)
            if member is None:
                raise PackageCorruptError(f"package corrupt: file {entry.path} is missing")
            expected = (
                stored_size(entry.size, self.chunk_size) if self.manifest.encrypted else entry.size
            )
            if entry.stored_size != expected:
                raise PackageCorruptError(
                    f"package corrupt: manifest sizes of {entry.path} do not agree"
                )
            if member.size < expected:
                raise PackageCorruptError(
                    f"package corrupt: file {entry.path} is truncated "
                    f"({member.size} of {expected} bytes)"
                )
            if member.size > expected:
                raise PackageCorruptError(
                    f"package corrupt: file {entry.path} is longer than the manifest says"
                )

    def _member(self, entry: FileEntry) -> Member:
        return self._index[entry.path]

    def iter_file(self, entry: FileEntry, progress: Optional[Progress] = None) -> Iterator[bytes]:
        """Yield the plaintext of ``entry`` chunk by chunk, each chunk authenticated."""
        decryptor = None
        if self.manifest.encrypted:
            if self._keys is None:
                raise KeyRequiredError("unlock the package before reading its files")
            index = self.manifest.files.index(entry)
            decryptor = ChunkDecryptor(
                self._keys.content, self.manifest.package_id_bytes, entry.path, index
            )
        member = self._member(entry)
        return decrypt_span(
            self._fd, member.offset, entry.size, self.chunk_size, decryptor, progress
        )

    def read_file(self, entry: FileEntry) -> bytes:
        """The whole plaintext of a (small) file, authenticated and digest-checked."""
        data = b"".join(self.iter_file(entry))
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise PackageCorruptError(
                f"package corrupt: file {entry.path} failed its SHA-256 check"
            )
        return data

    def verify(self, progress: Optional[Progress] = None) -> list[FileCheck]:
        """Authenticate every chunk and check every file's size and SHA-256; raise on a failure."""
        self.check_members()
        results = []
        for entry in self.manifest.files:
            digest = hashlib.sha256()
            size = 0
            for chunk in self.iter_file(entry, progress):
                digest.update(chunk)
                size += len(chunk)
            actual = digest.hexdigest()
            if size != entry.size or actual != entry.sha256:
                raise PackageCorruptError(
                    f"package corrupt: file {entry.path} failed its SHA-256 check"
                )
            results.append(FileCheck(entry.path, entry.size, actual, ok=True))
        return results

    def extract(self, target: Path, progress: Optional[Progress] = None) -> None:
        """Write every file under ``target`` (an existing private directory).

        Files are created 0600 with ``O_EXCL|O_NOFOLLOW`` and directories 0700,
        so nothing pre-planted in ``target`` is followed or overwritten. In an
        encrypted package the GCM tags authenticate every byte, so the extra
        SHA-256 pass is only made for unencrypted packages (``verify`` does both).
        """
        self.check_members()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        for entry in self.manifest.files:
            dest = target.joinpath(*entry.path.split("/"))
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            digest = None if self.manifest.encrypted else hashlib.sha256()
            fd = os.open(dest, flags, 0o600)
            try:
                for chunk in self.iter_file(entry, progress):
                    if digest is not None:
                        digest.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if digest is not None and digest.hexdigest() != entry.sha256:
                raise PackageCorruptError(
                    f"package corrupt: file {entry.path} failed its SHA-256 check"
                )
