"""Errors the engine raises for user mistakes, and the cancellation signal."""

from __future__ import annotations

__all__ = ["EngineError", "Cancelled"]


class EngineError(ValueError):
    """A user mistake the engine can explain in one sentence (wrong labels, no annotation, ...)."""


class Cancelled(Exception):
    """Raised inside long work when the caller's cancel flag turned true."""
