"""Errors raised for files and arrays a user gave us; each carries one sentence the user can act on."""

from __future__ import annotations

__all__ = ["VolumeError", "LabelError", "reason_of"]


class VolumeError(ValueError):
    """A volume file or folder cannot be read or written as asked (the message names the file)."""


class LabelError(VolumeError):
    """A label map holds values that are not class indices (fractions, negatives, NaN, too large)."""


def reason_of(exc: BaseException) -> str:
    """The informative line of a backend error, without a final period.

    ITK messages start with source paths and object addresses; the line after ``ITK ERROR`` is the one
    a user can read. An ``OSError`` gives its ``strerror`` (e.g. "No space left on device").
    """
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    for line in lines:
        if "ITK ERROR" in line:
            return line.split("): ", 1)[-1].rstrip(".")
    return lines[0].rstrip(".")[:300]
