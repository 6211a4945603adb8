"""Key material: generated keys, key files, passphrases, and the keys derived from them.

One 32-byte *master key* opens a package. It is either random (``generate_key``)
or derived from a passphrase with scrypt, whose random salt and cost parameters
are kept in the manifest. The master key itself never touches data: HKDF-SHA256
derives separate keys for the file contents, for the manifest's MAC and for the
public *key id*, so that publishing the key id reveals nothing usable and a
fresh content key is used for every package (its random package id is the HKDF
salt), which keeps GCM nonces from ever repeating under one key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ame.errors import PackageError

log = logging.getLogger(__name__)

KEY_BYTES = 32
# A key file holds 64 hex digits and a newline; a little slack for hand-made ones.
MAX_KEY_FILE_BYTES = 4096
KEY_ID_HEX = 16

# scrypt costs: 2**15 * 8 * 128 bytes = 32 MiB of memory and ~0.1 s per derivation.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
# A manifest chooses its own scrypt costs, so a hostile one could ask for
# gigabytes of memory; these bounds refuse that before deriving anything.
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16

_INFO_KEY_ID = b"ame package key id v1"
_INFO_CONTENT = b"ame package content v1"
_INFO_MANIFEST = b"ame package manifest v1"


def _hkdf(master: bytes, info: bytes, salt: Optional[bytes] = None) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(master)


def key_id(master: bytes) -> str:
    """The public fingerprint of a master key, stored in the manifest.

    It lets ``open`` say "wrong key" instead of "corrupt package": a different
    key has a different id. It is derived through HKDF, not a plain hash of the
    key, so it is independent of every key that touches data.
    """
    return _hkdf(master, _INFO_KEY_ID).hex()[:KEY_ID_HEX]


@dataclass(frozen=True)
class PackageKeys:
    """The per-package keys derived from a master key and the package id."""

    content: bytes
    manifest: bytes
    key_id: str


def derive_package_keys(master: bytes, package_id: bytes) -> PackageKeys:
    """Derive the content and manifest keys of one package from its master key."""
    if len(master) != KEY_BYTES:
        raise PackageError(f"a package key is {KEY_BYTES} bytes, got {len(master)}")
    return PackageKeys(
        content=_hkdf(master, _INFO_CONTENT, salt=package_id),
        manifest=_hkdf(master, _INFO_MANIFEST, salt=package_id),
        key_id=key_id(master),
    )


def generate_key() -> bytes:
    """32 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def new_scrypt_params() -> dict[str, Any]:
    """Fresh scrypt parameters (random salt, ame's default costs) for a manifest."""
    return {
        "name": "scrypt",
        "salt": base64.b64encode(secrets.token_bytes(SALT_BYTES)).decode("ascii"),
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
    }


def derive_from_passphrase(passphrase: str, params: dict[str, Any]) -> bytes:
    """The master key a passphrase gives under the manifest's scrypt parameters."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if not passphrase:
        raise PackageError("the passphrase is empty")
    try:
        salt = base64.b64decode(params["salt"], validate=True)
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise PackageError(f"package has unreadable scrypt parameters: {exc}") from exc
    if not (2 <= n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= MAX_SCRYPT_R):
        raise PackageError(f"package asks for scrypt n={n} r={r}, outside what ame accepts")
    if not (1 <= p <= MAX_SCRYPT_P) or len(salt) < 8:
        raise PackageError(f"package asks for scrypt p={p} or a salt too short to be safe")
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def decode_key(text: bytes) -> bytes:
    """Decode a key given as 64 hex digits, base64 of 32 bytes, or the 32 raw bytes."""
    stripped = text.strip()
    if len(stripped) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(stripped.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    try:
        decoded = base64.b64decode(stripped, validate=True)
        if len(decoded) == KEY_BYTES:
            return decoded
    except (binascii.Error, ValueError):
        pass
    if len(text) == KEY_BYTES:
        return bytes(text)
    # Never echo the text: it may be a real key with a typo in it.
    raise PackageError(
        f"not a package key: expected {2 * KEY_BYTES} hex digits, base64 of {KEY_BYTES} bytes "
        f"or {KEY_BYTES} raw bytes ({len(stripped)} characters given)"
    )


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` as hex to a new file readable by its owner only (mode 0600).

    ``O_EXCL`` refuses to overwrite an existing key: losing a key loses every
    package encrypted with it. The file is created with mode 0600 from the
    start, so there is no moment when another user could read it.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise PackageError(f"key file {path} already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise PackageError(f"cannot create key file {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)  # a umask cannot widen it, but be explicit
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise PackageError(f"cannot write key file {path}: {exc.strerror}") from exc
    os.close(fd)


def generate_key_file(path: Path) -> bytes:
    """Create a key file with a new random key and return the key (never print it)."""
    key = generate_key()
    write_key_file(Path(path), key)
    return key


def read_key_file(path: Path) -> bytes:
    """Read a key file written by ``generate_key_file`` (or hex/base64/raw by hand)."""
    from ame.boundedio import InputLimitError, read_regular_file

    path = Path(path)
    if not (path.is_symlink() or path.exists()):
        raise PackageError(f"key file {path} does not exist")
    try:
        # A regular file of a few bytes: /dev/zero or a fifo is refused at once.
        data = read_regular_file(path, MAX_KEY_FILE_BYTES, what="key file")
        st = path.stat()
    except InputLimitError as exc:
        raise PackageError(str(exc)) from None
    except OSError as exc:
        raise PackageError(f"cannot read key file {path}: {exc.strerror}") from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        log.warning("key file %s is readable by other users (mode %o)", path, st.st_mode & 0o777)
    try:
        return decode_key(data)
    except PackageError as exc:
        raise PackageError(f"key file {path}: {exc}") from exc


KEY_FILE_ENV = "AME_PACKAGE_KEY_FILE"
KEY_ENV = "AME_PACKAGE_KEY"
PASSPHRASE_ENV = "AME_PACKAGE_PASSPHRASE"


@dataclass(frozen=True)
class Secret:
    """What opens a package: a master key, or a passphrase still to be stretched."""

    key: Optional[bytes] = None
    passphrase: Optional[str] = None

    def master_key(self, kdf: dict[str, Any]) -> bytes:
        """The master key for a package whose manifest names ``kdf``."""
        name = kdf.get("name")
        if name == "scrypt":
            if self.passphrase is None:
                raise PackageError("this package was encrypted with a passphrase; give one")
            return derive_from_passphrase(self.passphrase, kdf)
        if name == "none":
            if self.key is None:
                raise PackageError("this package was encrypted with a key; give the key file")
            return self.key
        raise PackageError(f"package names an unknown key derivation '{name}'")


def secret_from_env(environ: Optional[dict[str, str]] = None) -> Optional[Secret]:
    """The secret in ``AME_PACKAGE_KEY_FILE``, ``AME_PACKAGE_KEY`` or ``AME_PACKAGE_PASSPHRASE``.

    This is how a registered ``packaged-encrypted`` version and ``ame package
    serve`` workers get their key: through the environment, never through an
    argument that would show up in a process listing.
    """
    env = os.environ if environ is None else environ
    if env.get(KEY_FILE_ENV):
        return Secret(key=read_key_file(Path(env[KEY_FILE_ENV])))
    if env.get(KEY_ENV):
        try:
            return Secret(key=decode_key(env[KEY_ENV].encode("utf-8")))
        except PackageError as exc:
            raise PackageError(f"{KEY_ENV}: {exc}") from exc
    if env.get(PASSPHRASE_ENV):
        return Secret(passphrase=env[PASSPHRASE_ENV])
    return None
