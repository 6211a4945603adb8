"""The format's building blocks with real crypto: chunking, paths, keys, scrypt bounds."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path

import pytest

from ame.errors import PackageCorruptError, PackageError
from ame.packaging.errors import UnsafePathError
from ame.packaging.keys import decode_key, derive_from_passphrase, derive_package_keys, key_id
from ame.packaging.paths import check_member_path
from ame.packaging.stream import (
    TAG_BYTES,
    ChunkDecryptor,
    ChunkEncryptor,
    decrypt_span,
    encrypt_stream,
    stored_size,
)

KEY = bytes(range(32))
PID = bytes(16)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 7])
def test_stream_round_trip_any_size(size: int, tmp_path: Path) -> None:
    data = os.urandom(size)
    keys = derive_package_keys(KEY, PID)
    enc = ChunkEncryptor(keys.content, PID, "models/x.bin", 3)
    digest = hashlib.sha256()
    sealed = b"".join(encrypt_stream(io.BytesIO(data), size, 4096, enc, digest))
    assert len(sealed) == stored_size(size, 4096)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    path = tmp_path / "sealed"
    path.write_bytes(b"junk" + sealed)
    fd = os.open(path, os.O_RDONLY)
    try:
        dec = ChunkDecryptor(keys.content, PID, "models/x.bin", 3)
        assert b"".join(decrypt_span(fd, 4, size, 4096, dec)) == data
        # The same bytes under another path, file index or package id do not open.
        for other in (
            ChunkDecryptor(keys.content, PID, "models/y.bin", 3),
            ChunkDecryptor(keys.content, PID, "models/x.bin", 4),
            ChunkDecryptor(derive_package_keys(KEY, b"\1" * 16).content, PID, "models/x.bin", 3),
        ):
            with pytest.raises(PackageCorruptError, match="failed authentication"):
                b"".join(decrypt_span(fd, 4, size, 4096, other))
    finally:
        os.close(fd)


def test_final_flag_detects_truncation_at_chunk_boundary() -> None:
    keys = derive_package_keys(KEY, PID)
    enc = ChunkEncryptor(keys.content, PID, "models/x", 0)
    sealed = list(encrypt_stream(io.BytesIO(b"a" * 8192), 8192, 4096, enc, hashlib.sha256()))
    dec = ChunkDecryptor(keys.content, PID, "models/x", 0)
    # Chunk 0 is sealed as "not final": presented as the last chunk, it fails.
    with pytest.raises(PackageCorruptError, match=r"chunk 0"):
        dec.open(0, sealed[0], final=True)
    assert dec.open(0, sealed[0], final=False) == b"a" * 4096
    assert len(sealed[1]) == 4096 + TAG_BYTES


def test_nonces_are_unique_across_files_and_chunks() -> None:
    keys = derive_package_keys(KEY, PID)
    nonces = {
        ChunkEncryptor(keys.content, PID, f"models/{f}", f).nonce(c)
        for f in range(50)
        for c in range(50)
    }
    assert len(nonces) == 2500 and all(len(n) == 12 for n in nonces)


@pytest.mark.parametrize("good", ["models/MLmodel", "models/artifacts/a-b_c.1.pkl", "hooks/pre.py"])
def test_safe_paths(good: str) -> None:
    assert check_member_path(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../x",
        "models/../x",
        "/abs",
        "C:/x",
        "models\\x",
        "models/./x",
        "models/",
        "other/x",
        "models",
        "models/a\x00b",
        "models/a\nb",
    ],
)
def test_unsafe_paths(bad: str) -> None:
    with pytest.raises(UnsafePathError):
        check_member_path(bad)


def test_key_forms_and_key_id() -> None:
    assert decode_key(KEY.hex().encode()) == KEY
    assert decode_key(base64.b64encode(KEY) + b"\n") == KEY
    assert decode_key(KEY) == KEY
    with pytest.raises(PackageError, match="not a package key") as err:
        decode_key(b"deadbeef")
    assert "deadbeef" not in str(err.value)
    assert key_id(KEY) != key_id(bytes(32)) and len(key_id(KEY)) == 16
    # The key id reveals no key material that touches data.
    assert key_id(KEY) not in derive_package_keys(KEY, PID).content.hex()


def test_hostile_scrypt_parameters_are_refused_before_deriving() -> None:
    salt = base64.b64encode(bytes(16)).decode()
    with pytest.raises(PackageError, match="outside what ame accepts"):
        derive_from_passphrase("pw", {"name": "scrypt", "salt": salt, "n": 2**30, "r": 8, "p": 1})
    with pytest.raises(PackageError, match="salt too short"):
        derive_from_passphrase("pw", {"name": "scrypt", "salt": "AAAA", "n": 2**10, "r": 8, "p": 1})
    a = derive_from_passphrase("pw", {"name": "scrypt", "salt": salt, "n": 2**10, "r": 8, "p": 1})
    b = derive_from_passphrase("pw2", {"name": "scrypt", "salt": salt, "n": 2**10, "r": 8, "p": 1})
    assert len(a) == 32 and a != b
