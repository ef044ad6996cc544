"""The K-over-training curve (the supplement's Fig. 1) kept in a checkpoint's extras.

A fine-tune records the W-LD update range K after every optimiser step; the checkpoint keeps it as
``extra["k_history"] = [[step, K], ...]`` (at most ``MAX_POINTS`` evenly spaced steps, the last always
kept), so ``napari-smp clusters`` can draw it later. Checkpoints written before this existed, and models
without a memory bank, have none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["MAX_POINTS", "k_history", "read_k_history"]

MAX_POINTS = 2000  # a 30,000-step training keeps every 15th step: a few tens of kB of JSON


class _Step(Protocol):
    step: int
    k: int | None


def k_history(reports: Sequence[_Step], max_points: int = MAX_POINTS) -> list[list[int]] | None:
    """``[[step, K], ...]`` of a run's step reports; None when the model has no bank (K is None).

    Args:
        reports: the loop's ``StepReport`` list, in step order.
        max_points: most points kept (evenly spaced; the last step is always kept).
    """
    points = [[int(r.step), int(r.k)] for r in reports if r.k is not None]
    if not points:
        return None
    if len(points) > max_points:
        every = -(-len(points) // max_points)
        points = points[::every] + ([points[-1]] if (len(points) - 1) % every else [])
    return points


def read_k_history(extra: Mapping[str, Any]) -> list[tuple[int, int]] | None:
    """The K history of a checkpoint's extras (``read_checkpoint_info(path)["extra"]``); None if absent."""
    raw = extra.get("k_history")
    if not raw:
        return None
    return [(int(s), int(k)) for s, k in raw]
