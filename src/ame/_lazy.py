"""Package exports imported on first use, so that ``import ame.<package>`` stays cheap.

Several packages (registry, llm, packaging, serving) export names whose modules
import MLflow, pandas or the server stack. Each package's ``__init__`` maps its
public names to where they live and delegates ``__getattr__`` (PEP 562) here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps a public name to
    ``"module"`` (same name there) or ``"module:attribute"`` (exported under another name).
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = home.partition(":")
        return getattr(import_module(module), attribute or name)

    return __getattr__
