"""Where ame keeps per-user task state: the environment cache and the secret store.

Both default to the platform's user directories (``platformdirs``) and can be
moved with an environment variable, so tests and CI keep everything in a
temporary directory and never touch a developer's real cache or secrets.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root of ame's cache (``$AME_CACHE_DIR``, else the user cache dir)."""
    override = os.environ.get("AME_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ame"))


def envs_dir() -> Path:
    """The directory holding one sub-directory per cached task environment."""
    return cache_dir() / "envs"


def config_dir() -> Path:
    """ame's per-user configuration directory (``$AME_CONFIG_DIR``, else the user config dir)."""
    override = os.environ.get("AME_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("ame"))


def secrets_file() -> Path:
    """The secret store file (``$AME_SECRETS_FILE``, else ``secrets.json`` in the config dir)."""
    override = os.environ.get("AME_SECRETS_FILE")
    if override:
        return Path(override).expanduser()
    return config_dir() / "secrets.json"
