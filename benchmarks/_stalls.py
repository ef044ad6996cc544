"""Main-thread stall meter for benchmarks that drive a real napari viewer.

A 10 ms ``QTimer`` on the viewer's thread records when the event loop got round to it; the gap between
two ticks is how long the loop was busy (a user's click or scroll waits that long). Work is measured in
named *actions* (``with meter.action("Segment: run"):``): each gets its longest gap and 99th
percentile. A watchdog thread samples the main thread's Python stack whenever the loop has been silent
for more than ``sample_after`` seconds, so a table row can name the code that held the loop (the
innermost frame of this package, else of napari/vispy/Qt wrappers).

Qt-only helper for ``benchmarks/viewer_stalls.py``; nothing here imports napari_smp.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ActionStalls", "StallMeter", "wait_until"]

TICK_MS = 10


@dataclass
class ActionStalls:
    """One action's event-loop gaps (ms) and the stacks sampled while the loop was silent."""

    name: str
    seconds: float
    gaps_ms: np.ndarray
    samples: list[str] = field(default_factory=list)  # every sample taken in the action
    worst: list[str] = field(default_factory=list)  # the samples taken during its longest gap

    @property
    def longest_ms(self) -> float:
        return float(self.gaps_ms.max()) if self.gaps_ms.size else 0.0

    @property
    def p99_ms(self) -> float:
        return float(np.quantile(self.gaps_ms, 0.99)) if self.gaps_ms.size else 0.0

    def over(self, ms: float) -> int:
        """Number of gaps longer than ``ms``."""
        return int((self.gaps_ms > ms).sum())

    def cause(self) -> str:
        """The code most often on top of the main thread's stack during the longest gap (else during any
        silence of the action; '' if no sample was taken)."""
        pool = self.worst or self.samples
        if not pool:
            return ""
        where, _ = collections.Counter(pool).most_common(1)[0]
        return where

    def merge(self, other: ActionStalls) -> None:
        """Add another stretch of the same action (it was interrupted by a separately measured one)."""
        if other.longest_ms > self.longest_ms:
            self.worst = other.worst
        self.seconds += other.seconds
        self.gaps_ms = np.concatenate([self.gaps_ms, other.gaps_ms])
        self.samples += other.samples


#: innermost frames that say little by themselves: what the main thread was doing there
_PLAIN = {
    ("_stalls.py", "wait_until"): "Qt's event loop in C++ (no Python frame: layout, painting, GL)",
    ("qt_main_window.py", "event"): "napari's main window event: Qt layout/painting in C++",
}


def _where(frame: object) -> str:
    """The innermost frame worth naming: this package's, else napari/vispy/superqt/matplotlib's."""
    stack = traceback.extract_stack(frame)  # outermost first
    inner = stack[-1]
    for (file, func), text in _PLAIN.items():
        if inner.filename.endswith(file) and inner.name == func:
            return text
    for marks in (("napari_smp",), ("napari", "vispy", "superqt", "matplotlib", "qtpy")):
        for fr in reversed(stack):
            path = fr.filename.replace("\\", "/")
            if any(f"/{m}/" in path for m in marks) and "/_stalls.py" not in path:
                short = path.split("site-packages/")[-1].split("src/")[-1]
                return f"{short}:{fr.lineno} {fr.name}"
    fr = stack[-1]
    return f"{fr.filename.rsplit('/', 1)[-1]}:{fr.lineno} {fr.name}"


class StallMeter:
    """Ticks on the Qt main thread and a stack-sampling watchdog; see the module docstring.

    Args:
        sample_after: seconds of main-thread silence after which the watchdog samples its stack.
    """

    def __init__(self, sample_after: float = 0.1) -> None:
        from qtpy.QtCore import Qt, QTimer

        self._ticks: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._main_id = threading.get_ident()
        self._sample_after = sample_after
        self._samples: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self.actions: list[ActionStalls] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        self._ticks.append(now)
        self._last = now

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            if time.perf_counter() - self._last > self._sample_after:
                frame = sys._current_frames().get(self._main_id)
                if frame is not None:
                    self._samples.append((time.perf_counter(), _where(frame)))

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()
        self._watchdog.start()

    def stop(self) -> None:
        self._timer.stop()
        self._stop.set()

    def measure(self, name: str, t0: float, t1: float) -> ActionStalls:
        """The stalls between ``t0`` and ``t1`` (``perf_counter`` times) as action ``name``; a second
        stretch of the same name is merged into the first."""
        inside = np.asarray([t0, *(t for t in self._ticks if t0 < t <= t1), t1])
        gaps = np.diff(inside) * 1000.0
        samples = [(t, w) for t, w in self._samples if t0 < t <= t1]
        i = int(np.argmax(gaps)) if gaps.size else 0
        lo, hi = (inside[i], inside[i + 1]) if gaps.size else (t0, t0)
        found = ActionStalls(name, t1 - t0, gaps, [w for _, w in samples], [w for t, w in samples if lo < t <= hi])
        for a in self.actions:
            if a.name == name:
                a.merge(found)
                return a
        self.actions.append(found)
        return found

    @contextmanager
    def action(self, name: str) -> Iterator[None]:
        """Measure the event loop from entering to leaving the block as one named action."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            a = self.measure(name, t0, time.perf_counter())
            print(f"  {name}: {a.seconds:.1f} s, longest stall {a.longest_ms:.0f} ms, p99 {a.p99_ms:.0f} ms"
                  + (f"  [{a.cause()}]" if a.longest_ms > 200 else ""), flush=True)


def wait_until(done: Callable[[], bool], timeout: float, what: str, settle: float = 0.5) -> None:
    """Run the Qt event loop (a real one, as ``napari.run`` does) until ``done()``, then ``settle`` s more.

    Raises:
        TimeoutError: ``done()`` stayed false for ``timeout`` seconds.
    """
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    end = time.perf_counter() + timeout
    state = {"settle_until": None, "timed_out": False}

    def poll() -> None:
        now = time.perf_counter()
        if state["settle_until"] is None:
            if done():
                state["settle_until"] = now + settle
            elif now > end:
                state["timed_out"] = True
                loop.quit()
                return
        if state["settle_until"] is not None and now >= state["settle_until"]:
            loop.quit()

    poller = QTimer()
    poller.setInterval(20)
    poller.timeout.connect(poll)
    poller.start()
    loop.exec()
    poller.stop()
    if state["timed_out"]:
        raise TimeoutError(f"{what} did not finish within {timeout:.0f} s")
