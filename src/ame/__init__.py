"""ame: carry a machine-learning model through its whole life.

Importing this package stays cheap on purpose: it must not import mlflow, the
server stack or any optional engine, so that ``ame --help`` answers at once and
libraries can depend on ``ame`` without paying for what they do not use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
