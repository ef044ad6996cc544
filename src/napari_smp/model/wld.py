"""W-LD, the Weight-Loss Dynamic update of a prototype memory bank (research/paper.md §2.5).

Pure pieces, kept apart from the attention module so that each can be checked by hand:

- :func:`next_k`: the update range K follows the change of the training loss between two
  consecutive optimiser steps; a falling loss replaces fewer slots, a rising loss more.
- :class:`KController`: when that rule applies during a training run and which banks take its K.
- :func:`wld_write`: per cluster, the K weakest memory slots (slot score) are pulled by momentum
  towards the K strongest routed features (pixel score), weakest slot paired with strongest feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..config import MemoryConfig

__all__ = ["next_k", "KController", "slot_scores", "pixel_scores", "wld_write"]


def next_k(
    k: int,
    prev_loss: float | None,
    loss: float | None,
    slots: int,
    low: float = 0.25,
    high: float = 0.75,
    policy: Literal["reset", "clamp"] = "reset",
) -> int:
    """The K rule of the official trainer, written in terms of M.

    ``K = int(M * (0.5 - 0.5 * delta))`` with ``delta = prev_loss - loss`` (``int`` truncates toward 0,
    as Python's does in the official code). A value outside ``[low * M, high * M]`` is reset to
    ``M // 2`` (official) or clamped into the range.

    Args:
        k: the current K, returned unchanged when either loss is missing or not finite.
        prev_loss: training loss of the previous optimiser step.
        loss: training loss of this optimiser step.
        slots: M, memory slots per cluster.
        low: lower bound of K as a fraction of M.
        high: upper bound of K as a fraction of M.
        policy: ``"reset"`` (official) or ``"clamp"``.

    Returns:
        The new K.
    """
    if prev_loss is None or loss is None or not (math.isfinite(prev_loss) and math.isfinite(loss)):
        return k
    delta = prev_loss - loss
    # the official expression, operand order kept so that M = 100 gives bit-identical results
    a = int((-0.5 * delta + 0.5) * slots)
    lo, hi = low * slots, high * slots
    if lo <= a <= hi:
        return a
    if policy == "reset":
        return slots // 2
    if policy == "clamp":
        return min(max(a, math.ceil(lo)), math.floor(hi))
    raise ValueError(f"unknown K policy {policy!r}; choose 'reset' or 'clamp'")


@dataclass(frozen=True)
class KController:
    """The K schedule of a training run: :func:`next_k` once the warm-up is over, shared by the banks.

    A rule without state: the current K, the previous step's loss and the step count are the network's
    buffers (``SimMPNet.k_state``, ``prev_loss``, ``memory_steps``), so checkpoints keep them under the
    names they always had and a resumed run continues the rule.

    Attributes:
        slots: M, memory slots per cluster.
        low: lower bound of K as a fraction of M.
        high: upper bound of K as a fraction of M.
        policy: ``"reset"`` (official) or ``"clamp"``, for a K outside the bounds.
        warmup_steps: optimiser steps of the banks' warm-up.
        delay_steps: further steps before K follows the loss (official: 100 epochs).
        share_decoder: the decoder banks take K too (official: they keep M/2 forever).
        k_init: K before the rule applies (None: M // 2).
    """

    slots: int
    low: float = 0.25
    high: float = 0.75
    policy: Literal["reset", "clamp"] = "reset"
    warmup_steps: int = 2000
    delay_steps: int = 0
    share_decoder: bool = True
    k_init: int | None = None

    @classmethod
    def from_config(cls, memory: MemoryConfig) -> KController:
        """The schedule a :class:`~napari_smp.config.MemoryConfig` describes."""
        return cls(
            slots=memory.slots,
            low=memory.k_low,
            high=memory.k_high,
            policy=memory.k_policy,
            warmup_steps=memory.warmup_steps,
            delay_steps=memory.k_delay_steps,
            share_decoder=memory.share_decoder_k,
            k_init=memory.k_init,
        )

    @property
    def initial_k(self) -> int:
        """K before the loss moves it."""
        return self.slots // 2 if self.k_init is None else self.k_init

    def next(self, step: int, k: int, prev_loss: float, loss: float) -> int:
        """K after optimiser step ``step`` (counted from 1) whose training loss was ``loss``.

        Args:
            step: steps so far, this one included.
            k: the current K.
            prev_loss: the previous step's loss; NaN when there was none.
            loss: this step's loss.
        """
        # both losses of the difference must come from main-phase forwards (the loss reported at step s
        # was computed by a forward that saw s - 1 steps), then delay_steps more
        if step <= self.warmup_steps + 1 + self.delay_steps:
            return k
        prev = None if math.isnan(prev_loss) else prev_loss
        return next_k(k, prev, loss, self.slots, self.low, self.high, self.policy)

    def sets(self, module: str) -> bool:
        """Whether the DMW-LA module named ``module`` ("encoder.stage3.1", "decoder.stage2") takes K."""
        return module.startswith("encoder") or self.share_decoder


def slot_scores(pool: torch.Tensor) -> torch.Tensor:
    """Slot score u: softmax across the M slots of each feature, summed over features.

    Args:
        pool: memory bank, shape (k, M, D).

    Returns:
        Scores, shape (k, M); each row sums to D.
    """
    return pool.float().softmax(dim=1).sum(dim=2)


def pixel_scores(feats: torch.Tensor, assign: torch.Tensor, clusters: int) -> torch.Tensor:
    """Pixel score v: per cluster, softmax across its routed pixels of each feature, summed over features.

    A segmented softmax done with scatter operations, so there is no loop over clusters or pixels.

    Args:
        feats: routed features, shape (N, D).
        assign: cluster of every feature, shape (N,), values in [0, clusters).
        clusters: k.

    Returns:
        Scores, shape (N,).
    """
    feats = feats.float()
    n, d = feats.shape
    index = assign[:, None].expand(n, d)
    peak = feats.new_full((clusters, d), -math.inf).scatter_reduce(0, index, feats, "amax")
    e = (feats - peak[assign]).exp()
    total = feats.new_zeros((clusters, d)).index_add_(0, assign, e)
    return (e / total[assign]).sum(dim=1)


@torch.no_grad()
def wld_write(
    pool: torch.Tensor, feats: torch.Tensor, assign: torch.Tensor, k_update: int, momentum: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace, in place, the ``k_update`` weakest slots of every cluster that received features.

    Slot ``low[c, i]`` (i-th weakest) becomes ``(1 - momentum) * slot + momentum * feature``, where the
    feature is the i-th strongest routed to ``c``. A cluster with fewer than ``k_update`` features
    reuses them in rank order (feature ``floor(i * n_c / K)``), a deterministic stand-in for the
    official "replicate, shuffle, cut". A cluster without features is left untouched.

    Args:
        pool: memory bank, shape (k, M, D); modified in place.
        feats: features routed to the bank, shape (N, D).
        assign: cluster of every feature, shape (N,).
        k_update: K, slots replaced per cluster, 1 <= K <= M.
        momentum: write momentum in [0, 1].

    Returns:
        ``(slots, active)``: the replaced slot indices per cluster, shape (k, K), weakest first, and a
        (k,) bool mask of the clusters that were written.
    """
    k, m, d = pool.shape
    if not 1 <= k_update <= m:
        raise ValueError(f"K must lie in [1, {m}], got {k_update}")
    low = slot_scores(pool).topk(k_update, dim=1, largest=False, sorted=True).indices  # (k, K)
    if feats.shape[0] == 0:
        return low, torch.zeros(k, dtype=torch.bool, device=pool.device)
    v = pixel_scores(feats, assign, k)
    # sort by cluster, then by descending score inside the cluster (two stable sorts)
    by_score = torch.argsort(v, descending=True, stable=True)
    order = by_score[torch.argsort(assign[by_score], stable=True)]
    counts = torch.bincount(assign, minlength=k)
    starts = counts.cumsum(0) - counts
    used = counts.clamp(max=k_update)
    rank = torch.arange(k_update, device=pool.device)
    pick = starts[:, None] + (rank[None, :] * used[:, None]) // k_update  # (k, K)
    pick = order[pick.clamp(max=feats.shape[0] - 1)]
    active = counts > 0
    index = low[:, :, None].expand(k, k_update, d)
    old = pool.gather(1, index)
    new = (1.0 - momentum) * old + momentum * feats[pick].to(pool.dtype)
    pool.scatter_(1, index, torch.where(active[:, None, None], new, old))
    return low, active
