"""Every kind of tampering is refused, with the message that says what happened.

One encrypted package (4 KiB chunks, so one file spans several chunks) is
built per session; each test mutates a copy of its bytes. Most checks use
``verify_package`` (every tag and digest, no model load) and a few go through
``open`` to show the loading path refuses the same way.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

import ame.packaging
from ame.errors import PackageCorruptError, PackageError, WrongKeyError
from ame.packaging.archive import read_index
from ame.packaging.errors import KeyRequiredError, UnsafePathError, UnsupportedFormatError
from ame.packaging.stream import TAG_BYTES

CHUNK = 4096
KEY = bytes(range(100, 132))


@pytest.fixture(scope="session")
def package(files_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tamper") / "files.amepkg"
    ame.packaging.build_package(
        files_model.ref,
        out,
        key=KEY,
        chunk_size=CHUNK,
        tracking_uri=files_model.tracking_uri,
        project_root=files_model.project,
    )
    return out


@pytest.fixture(scope="session")
def plain_package(files_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tamper-plain") / "plain.amepkg"
    ame.packaging.build_package(
        files_model.ref,
        out,
        tracking_uri=files_model.tracking_uri,
        project_root=files_model.project,
    )
    return out


def _path_of(package: Path, suffix: str) -> str:
    manifest = ame.packaging.inspect_package(package)
    return next(f["path"] for f in manifest["files"] if f["path"].endswith(suffix))


def _flip(package: Path, tmp_path: Path, offset: int) -> Path:
    data = bytearray(package.read_bytes())
    data[offset] ^= 0x01
    out = tmp_path / "tampered.amepkg"
    out.write_bytes(bytes(data))
    return out


def _rewrite(package: Path, tmp_path: Path, change: Any) -> Path:
    """Copy the tar member by member through ``change(name, data) -> [(name, data)]``."""
    out = tmp_path / "rewritten.amepkg"
    with tarfile.open(package) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            for name, new in change(info.name, data):
                new_info = tarfile.TarInfo(name)
                new_info.size = len(new)
                dst.addfile(new_info, io.BytesIO(new))
    return out


def _edit_manifest(package: Path, tmp_path: Path, edit: Any) -> Path:
    def change(name: str, data: bytes) -> list[tuple[str, bytes]]:
        if name != "manifest.json":
            return [(name, data)]
        manifest = json.loads(data)
        edit(manifest)
        return [(name, json.dumps(manifest).encode())]

    return _rewrite(package, tmp_path, change)


def test_untouched_package_verifies(package: Path) -> None:
    checks = ame.packaging.verify_package(package, key=KEY)
    assert len(checks) >= 5


def test_flipped_byte_in_ciphertext(package: Path, tmp_path: Path) -> None:
    blob = _path_of(package, "blob.bin")
    member = read_index(str(package))[blob]
    bad = _flip(package, tmp_path, member.offset + CHUNK + TAG_BYTES + 10)  # chunk 1's data
    with pytest.raises(
        PackageCorruptError,
        match=rf"package corrupt: file {blob} failed authentication \(chunk 1\)",
    ):
        ame.packaging.verify_package(bad, key=KEY)
    with pytest.raises(PackageCorruptError, match=f"file {blob} failed authentication"):
        ame.packaging.open(bad, key=KEY)


@pytest.mark.parametrize("chunk", [0, 2])
def test_flipped_byte_in_a_chunk_tag(package: Path, tmp_path: Path, chunk: int) -> None:
    blob = _path_of(package, "blob.bin")
    member = read_index(str(package))[blob]
    tag_start = member.offset + chunk * (CHUNK + TAG_BYTES) + min(CHUNK, 10_000 - chunk * CHUNK)
    bad = _flip(package, tmp_path, tag_start + 5)
    with pytest.raises(
        PackageCorruptError, match=rf"file {blob} failed authentication \(chunk {chunk}\)"
    ):
        ame.packaging.verify_package(bad, key=KEY)


def test_flipped_byte_in_mlmodel(package: Path, tmp_path: Path) -> None:
    member = read_index(str(package))["models/MLmodel"]
    bad = _flip(package, tmp_path, member.offset)
    with pytest.raises(PackageCorruptError, match="file models/MLmodel failed authentication"):
        ame.packaging.open(bad, key=KEY)


def test_flipped_byte_anywhere_in_file_data_or_headers_is_refused(
    package: Path, tmp_path: Path
) -> None:
    # A sweep over every member's header and data (tar padding carries nothing).
    index = read_index(str(package))
    offsets: list[int] = []
    for member in index.values():
        offsets += range(member.offset - 512, member.offset + member.size, 41)
    assert len(offsets) > 100
    for offset in offsets:
        bad = _flip(package, tmp_path, offset)
        with pytest.raises(PackageError):
            ame.packaging.verify_package(bad, key=KEY)


def test_flipped_byte_in_manifest_value(package: Path, tmp_path: Path) -> None:
    def edit(m: dict[str, Any]) -> None:
        first = m["files"][0]
        first["sha256"] = ("0" if first["sha256"][0] != "0" else "1") + first["sha256"][1:]

    bad = _edit_manifest(package, tmp_path, edit)
    with pytest.raises(PackageCorruptError, match=r"manifest\.json failed authentication"):
        ame.packaging.verify_package(bad, key=KEY)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["model"].update(version="999"),
        lambda m: m.update(created="2000-01-01T00:00:00+00:00"),
        lambda m: m["files"].reverse(),
        lambda m: m["hooks"].update(post=m["files"][0]["path"]),
        lambda m: m["encryption"].update(chunk_size=8192),
    ],
    ids=["version", "created", "file-order", "hooks", "chunk-size"],
)
def test_edited_manifest(package: Path, tmp_path: Path, edit: Any) -> None:
    bad = _edit_manifest(package, tmp_path, edit)
    with pytest.raises(PackageCorruptError):
        ame.packaging.verify_package(bad, key=KEY)


def test_two_files_swapped(package: Path, tmp_path: Path) -> None:
    weights, offset = _path_of(package, "weights.json"), _path_of(package, "offset.txt")
    contents = {}
    with tarfile.open(package) as tar:
        for name in (weights, offset):
            contents[name] = tar.extractfile(name).read()  # type: ignore[union-attr]
    assert len(contents[weights]) == len(contents[offset])
    swap = {weights: contents[offset], offset: contents[weights]}
    bad = _rewrite(package, tmp_path, lambda n, d: [(n, swap.get(n, d))])
    with pytest.raises(PackageCorruptError, match="failed authentication"):
        ame.packaging.verify_package(bad, key=KEY)


def test_chunks_reordered(package: Path, tmp_path: Path) -> None:
    blob = _path_of(package, "blob.bin")
    size = CHUNK + TAG_BYTES

    def change(name: str, data: bytes) -> list[tuple[str, bytes]]:
        if name == blob:
            data = data[size : 2 * size] + data[:size] + data[2 * size :]
        return [(name, data)]

    with pytest.raises(PackageCorruptError, match=rf"{blob} failed authentication \(chunk 0\)"):
        ame.packaging.verify_package(_rewrite(package, tmp_path, change), key=KEY)


def test_member_truncated_at_a_chunk_boundary(package: Path, tmp_path: Path) -> None:
    blob = _path_of(package, "blob.bin")

    def change(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return [(name, data[: 2 * (CHUNK + TAG_BYTES)] if name == blob else data)]

    with pytest.raises(PackageCorruptError, match=f"file {blob} is truncated"):
        ame.packaging.verify_package(_rewrite(package, tmp_path, change), key=KEY)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.999, 1.0])
def test_package_file_truncated(package: Path, tmp_path: Path, keep: float) -> None:
    # Cut points up to the end of the last member's data, then inside the
    # end-of-archive marker (whose absence is truncation too).
    data = package.read_bytes()
    last = max(read_index(str(package)).values(), key=lambda m: m.offset)
    end = last.offset + last.size
    cut = int(end * keep) if keep < 1 else end + 512
    bad = tmp_path / "short.amepkg"
    bad.write_bytes(data[:cut])
    with pytest.raises(PackageCorruptError):
        ame.packaging.verify_package(bad, key=KEY)


def test_unknown_format_version(package: Path, tmp_path: Path) -> None:
    bad = _edit_manifest(package, tmp_path, lambda m: m.update(format_version=2))
    with pytest.raises(UnsupportedFormatError, match="unsupported package format version 2"):
        ame.packaging.inspect_package(bad)


@pytest.mark.parametrize(
    "evil", ["../../x", "models/../../x", "/etc/passwd", "models/a\\..\\..\\x", "models//x", "x"]
)
def test_zip_slip_paths_in_manifest_are_refused(package: Path, tmp_path: Path, evil: str) -> None:
    bad = _edit_manifest(package, tmp_path, lambda m: m["files"][0].update(path=evil))
    with pytest.raises(UnsafePathError, match="package refused"):
        ame.packaging.open(bad, key=KEY)
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_extra_member_outside_the_manifest_is_refused(package: Path, tmp_path: Path) -> None:
    def change(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return (
            [(name, data), ("../../evil", b"boom")] if name == "manifest.json" else [(name, data)]
        )

    with pytest.raises(PackageCorruptError, match="not in the manifest"):
        ame.packaging.open(_rewrite(package, tmp_path, change), key=KEY)


def test_link_members_are_refused(package: Path, tmp_path: Path) -> None:
    out = tmp_path / "link.amepkg"
    out.write_bytes(package.read_bytes())
    with tarfile.open(out, "a") as tar:
        link = tarfile.TarInfo("models/evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(PackageCorruptError, match="not a regular file"):
        ame.packaging.verify_package(out, key=KEY)


def test_wrong_key_is_told_apart_from_corruption(package: Path) -> None:
    key_id = ame.packaging.inspect_package(package)["encryption"]["key_id"]
    with pytest.raises(WrongKeyError, match=rf"wrong key for package \(key id {key_id}"):
        ame.packaging.open(package, key=bytes(32))


def test_missing_key_and_wrong_kind_of_secret(package: Path) -> None:
    with pytest.raises(KeyRequiredError, match="is encrypted"):
        ame.packaging.verify_package(package)
    with pytest.raises(PackageError, match="encrypted with a key"):
        ame.packaging.verify_package(package, passphrase="nope")


def test_wrong_passphrase(files_model: Any, tmp_path: Path) -> None:
    out = tmp_path / "pw.amepkg"
    ame.packaging.build_package(
        files_model.ref,
        out,
        passphrase="right",
        tracking_uri=files_model.tracking_uri,
        project_root=files_model.project,
    )
    with pytest.raises(WrongKeyError, match="wrong key for package"):
        ame.packaging.open(out, passphrase="wrong")

    # The scrypt salt is covered by the MAC too.
    def salt(m: dict[str, Any]) -> None:
        m["encryption"]["kdf"]["n"] = 2**14

    with pytest.raises(PackageError):
        ame.packaging.verify_package(_edit_manifest(out, tmp_path, salt), passphrase="right")


def test_unencrypted_package_detects_changed_bytes(plain_package: Path, tmp_path: Path) -> None:
    blob = _path_of(plain_package, "blob.bin")
    member = read_index(str(plain_package))[blob]
    bad = _flip(plain_package, tmp_path, member.offset + 1234)
    with pytest.raises(PackageCorruptError, match=f"file {blob} failed its SHA-256 check"):
        ame.packaging.verify_package(bad)
    with pytest.raises(PackageCorruptError, match="SHA-256"):
        ame.packaging.open(bad)
