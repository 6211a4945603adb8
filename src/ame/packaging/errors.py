"""Packaging errors beyond the shared ones in ``ame.errors``.

``WrongKeyError`` and ``PackageCorruptError`` (from ``ame.errors``) cover the two
cases a user must tell apart; these subclasses only make the remaining refusals
precise enough for callers and tests to tell them apart too.
"""

from __future__ import annotations

from ame.errors import PackageCorruptError, PackageError


class UnsupportedFormatError(PackageError):
    """The package was written by a format version this ame cannot read."""


class UnsafePathError(PackageCorruptError):
    """A path inside the package would escape its directory (zip-slip) or is malformed."""


class KeyRequiredError(PackageError):
    """The package is encrypted and no key, key file or passphrase was given."""
