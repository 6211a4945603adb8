"""Safe writes to a SQLite registry shared by several processes.

SQLite lets one writer in at a time; when two ``ame`` processes (or a task and
the CLI) register versions at once, MLflow can fail with "database is locked"
or, worse, two processes can race through MLflow's schema creation on a fresh
file. ame serialises its own writes with a file lock next to the database and
retries, with backoff, the lock errors that other writers (a task's own
``mlflow`` calls, the UI) can still cause. Remote stores need neither: the
server serialises, so both helpers do nothing there.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ame.errors import StoreError

if TYPE_CHECKING:
    from filelock import FileLock

    from ame.registry.store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_TIMEOUT_S = 300.0
_LOCKS: dict[Path, FileLock] = {}
_LOCKS_GUARD = threading.Lock()
_READY: set[str] = set()


def _lock_for(db: Path) -> FileLock:
    # One FileLock object per database and process: the object is reentrant,
    # whereas two objects on the same file would deadlock one process on itself.
    from filelock import FileLock

    with _LOCKS_GUARD:
        lock = _LOCKS.get(db)
        if lock is None:
            db.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(db) + ".lock", timeout=LOCK_TIMEOUT_S)
            _LOCKS[db] = lock
        return lock


@contextmanager
def write_lock(store: Store) -> Iterator[None]:
    """Hold the store's write lock (a no-op for server stores)."""
    db = store.sqlite_path
    if db is None:
        yield
        return
    from filelock import Timeout

    lock = _lock_for(db)
    try:
        lock.acquire()
    except Timeout as exc:
        raise StoreError(
            f"another process has held the registry lock {lock.lock_file} for "
            f"{LOCK_TIMEOUT_S:.0f}s; is an ame command stuck?"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def is_lock_error(exc: BaseException) -> bool:
    """True for SQLite's transient "database is locked"/"busy" failures, however wrapped."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if "database is locked" in text or "database table is locked" in text:
            return True
        if "sqlite_busy" in text or "database is busy" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def with_retry(
    fn: Callable[[], T], *, attempts: int = 10, base_delay: float = 0.05, max_delay: float = 2.0
) -> T:
    """Call ``fn``, retrying with jittered exponential backoff while SQLite says it is locked.

    Only lock errors are retried: a failed SQLite statement is rolled back, so
    running it again cannot write twice.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts or not is_lock_error(exc):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random())
            logger.debug(
                "registry locked (attempt %d/%d), retrying in %.2fs", attempt, attempts, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def locked_write(store: Store, fn: Callable[[], T]) -> T:
    """Run the write ``fn`` under the store's lock, retrying lock errors."""
    with write_lock(store):
        return with_retry(fn)


def ensure_schema(store: Store) -> None:
    """Create (or migrate) the store's tables once per process, under the write lock.

    MLflow creates the schema of a fresh SQLite file the first time a process
    opens it; two processes doing that at once break each other. Opening the
    tracking and registry stores here, one process at a time, makes that safe.
    """
    if store.sqlite_path is None or store.tracking_uri in _READY:
        return
    from mlflow.tracking import MlflowClient

    def _open() -> None:
        client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)

    locked_write(store, _open)
    _READY.add(store.tracking_uri)
