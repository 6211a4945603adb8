"""The secret store moved to ``ame.secrets`` (tasks, llm and backends all read it).

These names stay importable from here for code written against the old place.
"""

from __future__ import annotations

from ame.secrets import MASK as MASK
from ame.secrets import Redactor as Redactor
from ame.secrets import SecretStore as SecretStore
from ame.secrets import resolve_secrets as resolve_secrets
