"""Tiny data, a tiny model config, an event-loop stall monitor and notification capture for widget tests."""

from __future__ import annotations

import numpy as np

from napari_smp.config import MemoryConfig, ModelConfig, NormConfig, TrainConfig

__all__ = ["SPACING", "ORIGIN", "NAMES", "tiny_config", "tiny_train", "tiny_volume", "TickMonitor",
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
    """A QTimer ticking every 10 ms on the main thread; ``longest_gap`` is the worst stall seen (s)."""

    def __init__(self) -> None:
        import time

        from qtpy.QtCore import QTimer

        self._clock = time.perf_counter
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(self._clock()))

    def start(self) -> None:
        self.ticks = [self._clock()]
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.longest_gap

    @property
    def longest_gap(self) -> float:
        return self.longest_gap_until(float("inf"))

    def longest_gap_until(self, end: float) -> float:
        """Worst stall before ``end`` (a ``perf_counter`` time), counting ``end`` itself as a tick.

        ``end`` is when the worker finished; what follows is napari adding the result layer.
        """
        t = np.asarray(self.ticks)
        t = np.append(t[t < end], min(end, t[-1])) if np.isfinite(end) else t
        return float(np.diff(t).max()) if len(t) > 1 else float("inf")


def notifications(kind: str | None = None) -> list[str]:
    """Messages napari's notification manager received (``kind``: error, warning, info)."""
    from napari.utils.notifications import notification_manager

    out = []
    for n in notification_manager.records:
        if kind is None or str(getattr(n.severity, "value", n.severity)).lower() == kind:
            out.append(str(n.message))
    return out
