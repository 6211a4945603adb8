"""The payload log's settings: one frozen object the server and the CLI share.

Kept free of heavy imports: the server's CLI builds it before anything is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Records waiting for the writer; past this, new ones are dropped (and counted)
# rather than letting a slow disk or artifact store slow the request path.
DEFAULT_QUEUE_SIZE = 10_000
# How often the writer drains the queue into the open file (one row group).
DEFAULT_FLUSH_SECONDS = 1.0
# A Parquet file is readable only once closed (its footer is written last), so
# files are also closed after this long: `ame monitor` sees traffic at most a
# minute old even on a quiet server whose file never reaches maxBytes.
DEFAULT_ROTATE_SECONDS = 60.0


@dataclass(frozen=True)
class LogSettings:
    """Where and how one server writes its payload log.

    ``local_dir`` is the base directory (``<project>/.ame/monitoring``) with the
    embedded store; without it, files go under the tracking server's artifact
    location for the model (``tracking_uri``), every replica uploading its own.
    """

    sample_rate: float = 1.0
    max_bytes: int = DEFAULT_MAX_BYTES
    local_dir: Optional[str] = None
    tracking_uri: Optional[str] = None
    queue_size: int = DEFAULT_QUEUE_SIZE
    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    rotate_seconds: float = DEFAULT_ROTATE_SECONDS
