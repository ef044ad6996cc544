"""How many CPU cores this process may use (no torch, no Qt: the engine and the widgets both ask)."""

from __future__ import annotations

import os
import time

__all__ = ["cpu_cores", "viewer_threads", "OtherLoad"]


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


class OtherLoad:
    """How many cores other processes keep busy, between two readings (Linux ``/proc``; else unknown).

    The machine's busy time (``/proc/stat``) minus this process's own (``/proc/self/stat``, all its
    threads), over the wall time between two calls, in cores. Nothing is sampled in between: a reading
    costs two small file reads.
    """

    def __init__(self) -> None:
        self._last = _snapshot()

    def cores(self) -> float | None:
        """Cores used by other processes since the previous call (or construction); None when unknown."""
        now = _snapshot()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        wall, busy, own = (a - b for a, b in zip(now, last, strict=True))
        return max(0.0, (busy - own) / wall)


def _snapshot() -> tuple[float, float, float] | None:
    """(wall seconds, busy CPU-seconds of the whole machine, CPU-seconds of this process), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()[1:]
        with open("/proc/self/stat", encoding="ascii") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal: everything but idle and iowait is busy
    values = [int(v) for v in fields[:8]]
    busy = sum(values) - values[3] - values[4]
    return time.monotonic(), busy / tick, (int(own[11]) + int(own[12])) / tick  # utime + stime
