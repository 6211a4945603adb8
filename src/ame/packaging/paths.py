"""Which paths a package may hold.

Every path in a manifest becomes a file under a private directory when a
package is opened, so a path like ``../../x`` or ``/etc/passwd`` must never
get that far (the "zip-slip" attack). Paths are checked as text, before any
file is touched, and the same rule is applied when building so that a package
ame writes is always one ame will read.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ame.packaging.errors import UnsafePathError

# meta/: the user's own manifest.json (ame.packaging.user_manifest), kept as given.
ROOTS = ("models", "hooks", "meta")
_ALLOWED = re.compile(r"^[A-Za-z0-9._\-+@=, ~()\[\]/]+$")


def check_member_path(path: str) -> str:
    """Return ``path`` if it is a safe relative path under ``models/``, ``hooks/`` or ``meta/``.

    Refused: empty or absolute paths, backslashes and drive letters, ``.`` and
    ``..`` segments, empty segments, control characters, and anything outside
    the two roots.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError("package refused: empty file path in manifest")
    shown = path.encode("unicode_escape").decode("ascii")
    if path.startswith("/") or "\\" in path or re.match(r"^[A-Za-z]:", path):
        raise UnsafePathError(f"package refused: absolute or non-POSIX path '{shown}'")
    if not _ALLOWED.match(path):
        raise UnsafePathError(f"package refused: path '{shown}' has characters ame does not accept")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePathError(f"package refused: unsafe path '{shown}' (escapes the package)")
    if parts[0] not in ROOTS or len(parts) < 2:
        raise UnsafePathError(
            f"package refused: path '{shown}' is outside "
            f"{', '.join(r + '/' for r in ROOTS[:-1])} and {ROOTS[-1]}/"
        )
    # PurePosixPath normalises nothing surprising once the checks above passed;
    # this is a last guard that the result is still the same relative path.
    if str(PurePosixPath(path)) != path:
        raise UnsafePathError(f"package refused: path '{shown}' is not in normal form")
    return path
