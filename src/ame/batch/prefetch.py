"""Read the next chunk while this one is predicted: one reader thread, one chunk ahead.

Parsing (pyarrow's CSV, JSON and Parquet readers) and most of ``predict``
(NumPy, scikit-learn's trees, pandas' conversions) release the GIL, so a
thread that reads chunk ``i+1`` while chunk ``i`` is scored overlaps the two
on two cores, without the model loads and copies of a second process: on
1M rows x 20 features with a random forest, 3.05 s of scoring went to 2.3 s
(bench/batch.py). Memory grows by one chunk, whatever the input's size.

The thread is always joined before the iteration ends (exhausted, failed or
closed early), so the files it reads are closed when the caller goes on to
remove parts or replace the output.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar, Union

T = TypeVar("T")

_DONE = object()
_POLL_SECONDS = 0.1


class _Failure:
    """An exception raised in the reader thread, carried to the consumer as it was."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(items: Iterable[T], ahead: int = 1) -> Iterator[T]:
    """Iterate over ``items`` with up to ``ahead`` of them produced in advance by a thread.

    Exceptions from ``items`` are raised here, in the consumer, at the point
    where the item would have come. Closing this iterator early (``break``, an
    exception in the consumer) stops the thread after the item it is making
    and closes ``items``.
    """
    slots: queue.Queue[Union[T, _Failure, object]] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: Union[T, _Failure, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # carried to the consumer, raised there
            put(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="ame-batch-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
