"""Building a package: one pass over the model and hook files into a new tar file.

The package is written to a hidden temporary file next to the output and moved
into place with ``os.replace`` only once complete, so a failed or interrupted
build leaves nothing behind and never clobbers a previous good package.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from ame.errors import PackageError
from ame.packaging.archive import TarWriter
from ame.packaging.keys import (
    derive_from_passphrase,
    derive_package_keys,
    new_scrypt_params,
)
from ame.packaging.manifest import (
    AAD_DESCRIPTION,
    ALGORITHM,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    NONCE_DESCRIPTION,
    dump_manifest,
)
from ame.packaging.paths import check_member_path
from ame.packaging.reader import manifest_mac
from ame.packaging.source import ModelFiles, model_files, plain_files
from ame.packaging.stream import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    ChunkEncryptor,
    encrypt_stream,
    stored_size,
)
from ame.packaging.user_manifest import MEMBER as USER_MANIFEST_MEMBER
from ame.packaging.user_manifest import check_named_files, read_user_manifest

log = logging.getLogger(__name__)

BuildProgress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as files are packaged."""

HOOK_NAMES = ("pre.py", "post.py")


@dataclass(frozen=True)
class BuildResult:
    """What was built: the file, its manifest, and the key id (no key material)."""

    path: Path
    manifest: dict[str, Any]
    size: int

    @property
    def key_id(self) -> Optional[str]:
        enc = self.manifest.get("encryption")
        return enc["key_id"] if enc else None


def _collect(root: Path, prefix: str) -> list[tuple[str, Path]]:
    """(package path, local file) for every regular file under ``root``, sorted."""
    found: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or path.is_dir():
            continue
        if path.is_symlink() or not path.is_file():
            raise PackageError(f"cannot package {path}: only regular files are packaged")
        found.append((check_member_path(f"{prefix}/{rel.as_posix()}"), path))
    return found


def _hook_files(hooks_dir: Optional[Path]) -> list[tuple[str, Path]]:
    if hooks_dir is None:
        return []
    hooks_dir = Path(hooks_dir)
    if not hooks_dir.is_dir():
        raise PackageError(f"hooks directory {hooks_dir} does not exist")
    if not any((hooks_dir / n).is_file() for n in HOOK_NAMES):
        raise PackageError(
            f"hooks directory {hooks_dir} has neither pre.py (preprocess) nor post.py (postprocess)"
        )
    return _collect(hooks_dir, "hooks")


def build_package(
    model: Optional[str | Path],
    output: str | Path,
    *,
    files: Optional[Sequence[str | Path]] = None,
    hooks_dir: Optional[str | Path] = None,
    manifest_file: Optional[str | Path] = None,
    key: Optional[bytes] = None,
    passphrase: Optional[str] = None,
    tracking_uri: Optional[str] = None,
    project_root: Optional[Path] = None,
    name: Optional[str] = None,
    version: Optional[str] = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Optional[BuildProgress] = None,
) -> BuildResult:
    """Package a registered version (``NAME/VERSION``, ``NAME@ALIAS``), a model directory,
    or plain ``files`` (MLSteam's model files, with ``hooks_dir`` and ``manifest_file``).

    Give ``key`` (32 bytes) or ``passphrase`` to encrypt; neither builds an
    unencrypted package for plain shipping. ``name``/``version`` label a
    package made from a directory or files. ``manifest_file`` is the user's own
    manifest (``ame.packaging.user_manifest``): kept in the package as given,
    its ``entry_point`` loading plain files and its ``files`` checked present.
    """
    if key is not None and passphrase is not None:
        raise PackageError("give a key or a passphrase, not both")
    if model is not None and files:
        raise PackageError("give a model or --files DIR..., not both")
    if model is None and not files:
        raise PackageError(
            "give a model (NAME/VERSION, NAME@ALIAS or an MLflow model directory) "
            "or --files DIR..."
        )
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise PackageError(f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}")
    output = Path(output).expanduser()
    if output.is_dir():
        raise PackageError(f"output {output} is a directory; give a file name")
    if not output.parent.is_dir():
        raise PackageError(f"output directory {output.parent} does not exist")
    hooks = _hook_files(Path(hooks_dir) if hooks_dir is not None else None)
    user = read_user_manifest(Path(manifest_file)) if manifest_file is not None else None
    hook_names = [arc for arc, _ in hooks]
    with ExitStack() as stack:
        if files:
            plain = stack.enter_context(
                plain_files(
                    [Path(f) for f in files],
                    entry_point=user.entry_point if user else None,
                    requirements=user.requirements if user else None,
                    name=name or output.stem,
                    version=version or "1",
                )
            )
            found, model_names = plain.model, plain.names
        else:
            assert model is not None
            if user is not None and user.entry_point:
                raise PackageError(
                    "the manifest's entry_point is the loader for plain --files; "
                    f"{model} is an MLflow model already"
                )
            found = stack.enter_context(
                model_files(
                    model,
                    tracking_uri=tracking_uri,
                    project_root=project_root,
                    name=name,
                    version=version,
                )
            )
            model_names = [arc for arc, _ in _collect(found.directory, "models")]
        extra: list[tuple[str, Path]] = []
        if user is not None:
            check_named_files(user, model_names, hook_names, str(manifest_file))
            # Kept byte for byte, as a file of the package: encrypted, digested
            # and so authenticated like the model files.
            held = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ame-meta-")))
            (held / "manifest.json").write_bytes(user.raw)
            extra.append((USER_MANIFEST_MEMBER, held / "manifest.json"))
        return _write(found, output, hooks + extra, key, passphrase, chunk_size, progress)


def _write(
    files: ModelFiles,
    output: Path,
    hooks: list[tuple[str, Path]],
    key: Optional[bytes],
    passphrase: Optional[str],
    chunk_size: int,
    progress: Optional[BuildProgress],
) -> BuildResult:
    members = _collect(files.directory, "models") + hooks
    if not any(p.startswith("models/") for p, _ in members):
        raise PackageError(f"{files.source} holds no files")
    package_id = secrets.token_bytes(16)
    encryption: Optional[dict[str, Any]] = None
    keys = None
    if key is not None or passphrase is not None:
        if passphrase is not None:
            kdf = new_scrypt_params()
            master = derive_from_passphrase(passphrase, kdf)
        else:
            assert key is not None
            kdf = {"name": "none"}
            master = key
        keys = derive_package_keys(master, package_id)
        encryption = {
            "algorithm": ALGORITHM,
            "chunk_size": chunk_size,
            "nonce": NONCE_DESCRIPTION,
            "aad": AAD_DESCRIPTION,
            "key_derivation": "HKDF-SHA256",
            "kdf": kdf,
            "key_id": keys.key_id,
        }
    sizes = [(arc, src, src.stat().st_size) for arc, src in members]
    total = sum(s for _, _, s in sizes)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            writer = TarWriter(out)
            entries = []
            for index, (arc, src, size) in enumerate(sizes):
                encryptor = (
                    ChunkEncryptor(keys.content, package_id, arc, index)
                    if keys is not None
                    else None
                )
                stored = stored_size(size, chunk_size) if keys is not None else size
                digest = hashlib.sha256()
                with src.open("rb") as fh:
                    writer.add(
                        arc,
                        stored,
                        encrypt_stream(fh, size, chunk_size, encryptor, digest, advance),
                    )
                entries.append(
                    {"path": arc, "size": size, "sha256": digest.hexdigest(), "stored_size": stored}
                )
            manifest: dict[str, Any] = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "package_id": package_id.hex(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "model": {
                    "name": files.name,
                    "version": files.version,
                    "source": files.source,
                    "flavor": files.flavor,
                    "flavors": files.flavors,
                    "signature": files.signature,
                    "run_id": files.run_id,
                    "requirements": files.requirements,
                    "mlflow_version": files.mlflow_version,
                },
                "files": entries,
                "hooks": {
                    "pre": "hooks/pre.py" if any(a == "hooks/pre.py" for a, _ in hooks) else None,
                    "post": "hooks/post.py"
                    if any(a == "hooks/post.py" for a, _ in hooks)
                    else None,
                },
                "encryption": encryption,
                "auth": None,
            }
            if any(a == USER_MANIFEST_MEMBER for a, _ in hooks):
                manifest["user_manifest"] = USER_MANIFEST_MEMBER
            if keys is not None:
                manifest["auth"] = {"algorithm": "HMAC-SHA256", "mac": manifest_mac(keys, manifest)}
            body = dump_manifest(manifest)
            writer.add(MANIFEST_NAME, len(body), [body])
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PackageError(f"could not write package {output}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("built %s (%d files, %d bytes)", output, len(entries), output.stat().st_size)
    return BuildResult(path=output, manifest=manifest, size=output.stat().st_size)
