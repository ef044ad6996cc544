"""How many CPU cores this process may use (no torch, no Qt: the engine and the widgets both ask)."""

from __future__ import annotations

import os

__all__ = ["cpu_cores", "viewer_threads"]


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def viewer_threads() -> int:
    """CPU threads for work started from the viewer: every core but one, which the viewer keeps.

    Without the spare core, two OpenMP threads spin-wait on each other whenever the viewer draws and
    a training step takes up to 25x longer (measured on 2 cores; docs/benchmarks.md).
    """
    return max(1, cpu_cores() - 1)
