"""The reader thread of ``ame.batch.prefetch``: order, errors where they happened, clean stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ame.batch.prefetch import prefetched


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ame-batch-reader"]


def test_items_come_in_order_and_the_thread_is_gone_after() -> None:
    assert list(prefetched(range(50), ahead=2)) == list(range(50))
    assert _reader_threads() == []


def test_an_error_in_the_source_comes_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad block")

    got: list[int] = []
    with pytest.raises(ValueError, match="bad block"):
        for item in prefetched(source()):
            got.append(item)
    assert got == [1, 2]
    assert _reader_threads() == []


def test_closing_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()
    made: list[int] = []

    def source() -> Iterator[int]:
        try:
            for i in range(1_000_000):
                made.append(i)
                yield i
        finally:
            closed.set()

    items = prefetched(source(), ahead=1)
    assert next(items) == 0
    items.close()  # what a break or an exception in the consumer does
    assert closed.is_set(), "the source was not closed before prefetched returned"
    assert _reader_threads() == []
    assert len(made) <= 4  # one in the consumer's hands, one queued, one being made


def test_an_error_in_the_consumer_does_not_leave_the_thread() -> None:
    with pytest.raises(RuntimeError):
        for item in prefetched(iter(range(100))):
            if item == 3:
                raise RuntimeError("consumer failed")
    assert _reader_threads() == []
