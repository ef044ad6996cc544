"""Choosing a device and the autocast precision that pays off on it."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import warnings
from collections.abc import Iterator

import torch

from .._cpu import OtherLoad, cpu_cores
from .errors import EngineError

__all__ = [
    "available_devices",
    "resolve_device",
    "autocast_dtype",
    "autocast",
    "configure_threads",
    "cpu_cores",
    "ThreadGovernor",
]


def available_devices() -> list[str]:
    """Devices usable here, best first, always ending with ``cpu``."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def resolve_device(name: str = "auto", strict: bool = False) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a device.

    ``auto`` picks CUDA, then Apple MPS, then the CPU. A device that is not present falls back to
    the CPU with a warning, or raises ``EngineError`` when ``strict`` (the user forced it).
    """
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    kind = name.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise EngineError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    if kind == "cpu" or kind in available_devices():
        return torch.device(name)
    msg = f"device {name!r} is not available on this machine (found: {', '.join(available_devices())})"
    if strict:
        raise EngineError(msg)
    warnings.warn(msg + "; falling back to the CPU", stacklevel=2)
    return torch.device("cpu")


@functools.cache
def _cpu_has_fast_bf16() -> bool:
    # Only where oneDNN has native bf16 kernels (AMX / AVX512-BF16) is bf16 autocast 2-3x faster
    # (research/env.md §4); elsewhere convolutions fall back to a reference kernel 10-100x slower.
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """The reduced precision worth using on ``device``, or None for plain fp32."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and _cpu_has_fast_bf16():
        return torch.bfloat16
    return None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` when ``dtype`` is set, a no-op otherwise."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU thread count: ``threads``, else ``$NAPARI_SMP_THREADS``, else every core.

    The command line has the machine to itself, so it uses every core (2 threads: a lite step
    0.43 s against 0.68 s on one, docs/benchmarks.md). The widgets pass one fewer, because the
    viewer needs a core: when another process holds one core, two OpenMP threads spin-wait on each
    other and a training step takes 25x longer than with one thread (measured on 2 cores).
    """
    env = os.environ.get("NAPARI_SMP_THREADS", "")
    n = threads if threads and threads > 0 else int(env) if env.isdigit() and int(env) > 0 else cpu_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class ThreadGovernor:
    """torch's CPU threads during a long run: the cores other processes leave free, looked at again every
    few seconds.

    Two OpenMP threads that share a core with another process spin-wait on each other in every parallel
    region. A lite training step (2 cores, another process busy on one): 3.52 s with 2 threads, 0.86 s
    with 1; on the idle machine 0.53 s with 2, 0.73 s with 1 (docs/experiments/2026-12-07-complete-pilot-
    busy-cpu.md). So a run uses every free core and gives one back while another process holds it.
    A fixed count (``threads``, ``$NAPARI_SMP_THREADS``) is kept as it is.

    Args:
        threads: a fixed thread count, or None to follow the load.
        every: seconds between two looks at the load.
    """

    def __init__(self, threads: int | None = None, every: float = 5.0) -> None:
        env = os.environ.get("NAPARI_SMP_THREADS", "")
        self.fixed = threads if threads and threads > 0 else int(env) if env.isdigit() and int(env) > 0 else None
        self.every = every
        self._load = OtherLoad()
        self._last = time.monotonic()
        self.threads = configure_threads(self.fixed)

    def tick(self) -> int:
        """Look at the load when ``every`` seconds have passed; returns the thread count in force."""
        if self.fixed is not None or time.monotonic() - self._last < self.every:
            return self.threads
        self._last = time.monotonic()
        others = self._load.cores()
        if others is not None:
            # a core counts as taken when another process keeps it busy more than a third of the time
            self.threads = configure_threads(max(1, cpu_cores() - math.ceil(others - 0.33)))
        return self.threads
