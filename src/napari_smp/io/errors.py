"""Errors raised for files and arrays a user gave us; each carries one sentence the user can act on."""

from __future__ import annotations

__all__ = ["VolumeError", "LabelError"]


class VolumeError(ValueError):
    """A volume file or folder cannot be read or written as asked (the message names the file)."""


class LabelError(VolumeError):
    """A label map holds values that are not class indices (fractions, negatives, NaN, too large)."""
