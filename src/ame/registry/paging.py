"""Walking a paged listing to the end: MLflow's ``PagedList`` or ame's own ``Page``.

MLflow's searches (runs, registered models, versions) hand back one page and a
token for the next; ``--all``, "every version of a model" and the reconciler
all need every page. This is the one loop that follows the tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional


def iter_pages(fetch: Callable[[Optional[str]], Any]) -> Iterator[Any]:
    """Yield every item of a paged listing, fetching page after page.

    ``fetch(token)`` returns one page for ``token`` (None for the first): an
    MLflow ``PagedList`` (iterable, with ``.token``) or an ``ame.registry.Page``
    (``.items`` and ``.next_page_token``). An empty token ends the walk.
    """
    token: Optional[str] = None
    while True:
        page = fetch(token)
        items: Iterable[Any] = page.items if hasattr(page, "next_page_token") else page
        yield from items
        token = getattr(page, "next_page_token", None) or getattr(page, "token", None)
        if not token:
            return
