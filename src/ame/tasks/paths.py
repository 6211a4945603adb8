"""Where ame keeps per-user task state: the environment cache.

It defaults to the platform's user cache directory (``platformdirs``) and can be
moved with an environment variable, so tests and CI keep everything in a
temporary directory and never touch a developer's real cache.
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
