"""Tiny data, a tiny model config, an event-loop tick counter, a held engine call and notification capture."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from napari_smp.config import MemoryConfig, ModelConfig, NormConfig, TrainConfig

__all__ = ["SPACING", "ORIGIN", "NAMES", "tiny_config", "tiny_train", "tiny_volume", "TickMonitor", "HeldWork",
           "notifications"]

SPACING = (2.5, 0.8, 0.8)
ORIGIN = (-12.0, 30.0, -5.0)
NAMES = ["background", "liver", "spleen"]


def tiny_config() -> ModelConfig:
    return ModelConfig(preset="lite", num_classes=3, class_names=list(NAMES), img_size=32, lite_width=8,
                       lite_depths=(1, 1, 1, 1), lite_memory_stages=(1, 2, 3, 4), norm=NormConfig(mode="percentile"),
                       use_memory=True,  # the bank and its K curve are what these widgets show
                       memory=MemoryConfig(slots=8, dim=16, decoder_dim=16, warmup_steps=3))


def tiny_train(**kw) -> TrainConfig:
    return TrainConfig(**{"batch_size": 2, "augment": False, "amp": False, "lr": 3e-3, **kw})


def tiny_volume(depth: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(Z, 32, 32) image with two bright blobs, and their labels 1 (square) and 2 (disc)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((depth, 32, 32), np.uint8)
    yy, xx = np.mgrid[:32, :32]
    labels[:, 6:16, 5:15] = 1
    labels[:, (yy - 22) ** 2 + (xx - 22) ** 2 < 30] = 2
    image = (labels * 60.0 + rng.normal(0, 8, labels.shape)).astype(np.float32)
    return image, labels


class TickMonitor:
    """A QTimer ticking every 10 ms on the main thread; ``ticks`` counts the ticks the event loop ran.

    Tests assert that ticks go on while a job runs, never how long a tick took (that depends on the
    machine's load; benchmarks/viewer_threads.py measures the stalls).
    """

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.ticks += 1

    def start(self) -> None:
        self.ticks = 0
        self.timer.start()

    def stop(self) -> int:
        self.timer.stop()
        return self.ticks


class HeldWork:
    """A widget's engine call ``work(ctx)`` that records the threads it runs in and can be held.

    The call blocks in its worker thread at its start (``at=0``) or in its ``at``-th ``ctx.progress`` /
    ``ctx.report`` call (after passing it on) until ``release()``; with ``until_cancel`` it also goes on
    once the job is cancelled. ``held`` is set when it blocks; only the first hold blocks. ``threads``
    holds the id of every thread the call started or reported in, ``calls`` counts its progress/report
    calls, and ``main`` is the main thread's id.

    Args:
        at: where to hold: 0 at the start, n in the n-th progress/report call.
        until_cancel: also end the hold when the job's ``ctx.cancelled()`` turns true.
        timeout: seconds after which a hold never released raises (a hang guard, not a timing check).
    """

    def __init__(self, at: int = 0, until_cancel: bool = False, timeout: float = 120.0) -> None:
        self.at, self.until_cancel, self.timeout = at, until_cancel, timeout
        self.main = threading.get_ident()
        self.held = threading.Event()
        self._go = threading.Event()
        self.threads: set[int] = set()
        self.calls = 0

    def install(self, monkeypatch: Any, owner: Any, name: str) -> None:
        """Patch ``owner.name``, a factory of ``work(ctx)`` callables, so that its work goes through here."""
        make = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *args, **kwargs: self.wrap(make(*args, **kwargs)))

    def wrap(self, work: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def held_work(ctx: Any) -> Any:
            self.threads.add(threading.get_ident())
            if self.at == 0:
                self._hold(ctx)
            return work(_HeldContext(ctx, self))

        return held_work

    def release(self) -> None:
        self._go.set()

    def _called(self, ctx: Any) -> None:
        self.threads.add(threading.get_ident())
        self.calls += 1
        if self.calls == self.at:
            self._hold(ctx)

    def _hold(self, ctx: Any) -> None:
        if self._go.is_set():
            return
        self.held.set()
        for _ in range(int(self.timeout / 0.01)):
            if self._go.wait(0.01) or (self.until_cancel and ctx.cancelled()):
                return
        raise RuntimeError("the test never released the held engine call")


class _HeldContext:
    """The job's context as the engine sees it, with every progress/report call counted (and maybe held)."""

    def __init__(self, ctx: Any, held: HeldWork) -> None:
        self._ctx, self._held = ctx, held

    def progress(self, done: int, total: int) -> None:
        self._ctx.progress(done, total)
        self._held._called(self._ctx)

    def report(self, item: object) -> None:
        self._ctx.report(item)
        self._held._called(self._ctx)

    def cancelled(self) -> bool:
        return self._ctx.cancelled()


def notifications(kind: str | None = None) -> list[str]:
    """Messages napari's notification manager received (``kind``: error, warning, info)."""
    from napari.utils.notifications import notification_manager

    out = []
    for n in notification_manager.records:
        if kind is None or str(getattr(n.severity, "value", n.severity)).lower() == kind:
            out.append(str(n.message))
    return out
