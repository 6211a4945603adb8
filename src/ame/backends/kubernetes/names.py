"""Kubernetes names and label values made from ame names.

ame names may hold ``_`` and ``.`` and be long (``product_recommendor.training``);
object names must be DNS-1123 labels and label values at most 63 characters.
A name that has to be shortened keeps a hash of the original, so two long
names never collide and the same name always maps to the same object.
"""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^a-z0-9-]+")
_INVALID_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


def _shorten(text: str, original: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(original.encode()).hexdigest()[:8]
    return text[: limit - 9].rstrip("-._") + "-" + digest


def dns_label(*parts: str, limit: int = 63) -> str:
    """``parts`` joined by ``-`` as a DNS-1035 label (lowercase, starts with a letter)."""
    original = "-".join(parts)
    text = _INVALID.sub("-", original.lower()).strip("-")
    text = re.sub(r"-{2,}", "-", text)
    if not text or not text[0].isalpha():
        text = "x-" + text
    return _shorten(text, original, limit).strip("-")


def label_value(text: str) -> str:
    """``text`` as a label value: at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends."""
    value = _INVALID_VALUE.sub("-", text).strip("-._")
    return _shorten(value, text, 63).strip("-._")


def secret_key(key: str) -> str:
    """An ame secret key as a Secret data key (``/`` is not allowed there; it becomes ``.``)."""
    return key.replace("/", ".")
