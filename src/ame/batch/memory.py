"""Allocator settings for a scoring process, so that its memory follows the chunk, not the input.

Measured with ``ame predict`` on 100k and 1M rows (tests/batch/test_memory.py,
Parquet; bench/batch.py, CSV). With Arrow's default pool (mimalloc) and glibc's
defaults (an arena per thread, a mmap threshold that slides up to 32 MB), the peak
resident memory at 1M rows was 8-40 MB above that at 100k, varying from run to run:
freed chunk buffers stayed cached in pools and arenas instead of being reused or
returned. With Arrow on the system pool (plain ``malloc``), one glibc arena, and a
fixed 128 KiB mmap threshold (a chunk's column buffers are mapped on their own and
unmapped when freed), the Parquet growth fell to 0-1 MB and the CSV growth from
156 MB to 52 MB, with rows/s no lower (the work is in parsing and predict, not in
allocation).

Only the scoring commands' own processes call this (``ame predict``, ``ame batch``
and their worker processes): ``score()`` as a library leaves its caller's process as
it is. A setting the user made in the environment wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameter numbers (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# Blocks from this size up are mapped on their own and unmapped when freed: a
# chunk's column buffers (hundreds of KB) go back to the system after each chunk
# instead of raising glibc's sliding threshold and staying in the heap.
MMAP_THRESHOLD_BYTES = 128 * 1024


def settle_allocators() -> None:
    """Arrow on the system allocator, glibc on one arena; a setting in the environment wins."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, say): none of its knobs below exist
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(M_ARENA_MAX, 1)
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
