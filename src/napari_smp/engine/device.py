"""Choosing a device and the autocast precision that pays off on it."""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator

import torch

from .._cpu import cpu_cores
from .errors import EngineError

__all__ = ["available_devices", "resolve_device", "autocast_dtype", "autocast", "configure_threads", "cpu_cores"]


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
