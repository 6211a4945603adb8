"""Walking MLflow's paged listings to the end (for ``--all``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional, TypeVar

T = TypeVar("T")


def iter_pages(fetch: Callable[[Optional[str]], Any]) -> Iterator[Any]:
    """Yield every item of a paged listing; ``fetch(token)`` returns an MLflow ``PagedList``."""
    token: Optional[str] = None
    while True:
        page = fetch(token)
        items: Iterable[Any] = page
        yield from items
        token = getattr(page, "token", None)
        if not token:
            return
