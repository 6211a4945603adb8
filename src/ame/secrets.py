"""ame's local secret store: values tasks and chat models read, kept out of any repository.

Secrets live in one JSON file readable only by its owner (mode 0600), under the
user's config directory, outside any project so that they never end up in a
repository. Values are set from a hidden prompt or stdin by ``ame secret set``
and are never printed, logged, or recorded as run params or tags; a task that
prints one has it replaced by ``***`` in its log (see ``Redactor``).

Its own module, low in the layer table (docs/architecture.md), because tasks,
``ame.llm`` (``api_key_secret``) and the backends (Kubernetes Secrets, Ray jobs)
all read it, and none of them should reach into another for it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ame.errors import SecretError
from ame.spec.model import SecretRef


def config_dir() -> Path:
    """ame's per-user configuration directory (``$AME_CONFIG_DIR``, else the user config dir)."""
    override = os.environ.get("AME_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("ame"))


def secrets_file() -> Path:
    """The secret store file (``$AME_SECRETS_FILE``, else ``secrets.json`` in the config dir).

    Tests and CI point it at a temporary file so a developer's real secrets are never touched.
    """
    override = os.environ.get("AME_SECRETS_FILE")
    if override:
        return Path(override).expanduser()
    return config_dir() / "secrets.json"


_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")
MASK = "***"


class SecretStore:
    """The secret store file: read, set and delete keys, always written atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or secrets_file()

    def _load(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretError(f"cannot read the secret store {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            raise SecretError(f"the secret store {self.path} is not valid JSON") from None
        secrets = data.get("secrets", {}) if isinstance(data, dict) else None
        if not isinstance(secrets, dict):
            raise SecretError(f"the secret store {self.path} has an unexpected layout")
        return {str(k): str(v) for k, v in secrets.items()}

    def _save(self, secrets: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=self.path.parent)
        try:
            # mkstemp creates the file 0600 already; chmod states it explicitly.
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": 1, "secrets": secrets}, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def keys(self) -> list[str]:
        """The names of the stored secrets, sorted (never their values)."""
        return sorted(self._load())

    def get(self, key: str) -> str | None:
        """The value of ``key``, or None when it is not set."""
        return self._load().get(key)

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (replacing any previous value)."""
        if not _KEY.match(key):
            raise SecretError(
                f"secret key {key!r} may only hold letters, digits and _ . - / characters"
            )
        if value == "":
            raise SecretError(f"refusing to store an empty value for secret {key!r}")
        secrets = self._load()
        secrets[key] = value
        self._save(secrets)

    def delete(self, key: str) -> None:
        """Remove ``key``; ``SecretError`` if it is not set."""
        secrets = self._load()
        if key not in secrets:
            raise SecretError(f"no secret {key!r} in {self.path}")
        del secrets[key]
        self._save(secrets)


def resolve_secrets(refs: Iterable[SecretRef], store: SecretStore | None = None) -> dict[str, str]:
    """Environment variables for a task's ``secrets``; ``SecretError`` naming any missing key."""
    refs = list(refs)
    if not refs:
        return {}
    store = store or SecretStore()
    values = store._load()
    missing = [ref.key for ref in refs if ref.key not in values]
    if missing:
        keys = ", ".join(repr(k) for k in missing)
        first = missing[0]
        raise SecretError(
            f"secret {keys} not found in {store.path}; set it with `ame secret set {first}`"
        )
    return {ref.inject_as: values[ref.key] for ref in refs}


class Redactor:
    """Replaces secret values in text with ``***`` before it reaches a terminal or a log."""

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted({v for v in values if v}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._values)
