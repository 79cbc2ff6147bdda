"""zenml-serving: serve a ZenML pipeline snapshot in-process over HTTP."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
