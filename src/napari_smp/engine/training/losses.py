"""The deep-supervision loss of Sim-MPNet (research/paper.md §4).

For every non-empty subset S of the four heads the logits are summed, and the loss of that sum is
``ce_weight * CE + dice_weight * soft Dice`` (Dice over all classes, background included). The 15
terms are summed, not averaged, as in the official code: the W-LD rule for K reads loss
differences at that scale. ``mode="heads"`` is the cheaper variant: each head alone and the sum of
all (the prediction), n + 1 terms instead of 2^n - 1 (6 against 31 for the full-resolution lite).
``mode="auxiliary"`` is for a network that predicts from its finest head alone (nnU-Net's deep
supervision): each head alone, the finest with weight 1 and every coarser one with half the weight
of the next finer (1, 1/2, 1/4, ...), so the coarse heads shape the features without being the answer.
Such heads may come at their own scale; their targets are then pooled to it (class fractions).

The target is class indices or class fractions (soft labels, ``resize_soft_labels``): CE is then the
cross-entropy against the fractions and the Dice overlap uses them in place of the one-hot map; for
a one-hot target both equal the index form exactly.

Unknown pixels (scribbles: nobody said what they are) never enter the loss. An index target marks them
``IGNORE`` (-1); a fraction target gives them no class at all (their fractions sum to 0, and a pixel
at a stroke's edge sums to its known share). CE is then the mean over the known pixels only and the
soft Dice is taken over them only (a prediction's ``p^2`` counts where the pixel is known); the gradient
at an unknown pixel is exactly 0. A target with no unknown pixel takes the unmasked formulas unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["IGNORE", "soft_dice_loss", "deep_supervision_loss", "head_subsets", "supervised_sums", "subset_weight"]


#: the class index of an unknown pixel in an index target (``F.nll_loss``'s ``ignore_index``)
IGNORE = -1
#: a fraction-target pixel whose fractions sum to less than this is (partly) unknown
_KNOWN = 1.0 - 1e-3


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5, onehot: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over classes of ``1 - (2 sum(p g) + eps) / (sum(p^2) + sum(g^2) + eps)``.

    Args:
        logits: (B, C, H, W) raw scores.
        target: (B, H, W) class indices.
        onehot: (B, C, H, W) one-hot ``target``, when the caller already has it.
    """
    if onehot is None:
        onehot = F.one_hot(target, num_classes=logits.shape[1]).permute(0, 3, 1, 2).float()
    return _dice_from_probs(logits.float().softmax(dim=1), onehot, onehot.sum((0, 2, 3)), eps)


def _dice_from_probs(
    probs: torch.Tensor,
    onehot: torch.Tensor,
    target_sq: torch.Tensor,
    eps: float,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft Dice loss from probabilities (B, C, H, W); ``target_sq`` = per-class sum of ``onehot``
    (which equals the sum of its squares); ``known`` (B, 1, H, W): each pixel's known share, None = all."""
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    pred_sq = probs.square() if known is None else probs.square() * known
    return (1.0 - (2.0 * inter + eps) / (pred_sq.sum(dims) + target_sq + eps)).mean()


def head_subsets(n_heads: int = 4) -> list[tuple[int, ...]]:
    """All non-empty subsets of the heads (15 for four heads)."""
    idx = range(n_heads)
    return [s for r in range(1, n_heads + 1) for s in itertools.combinations(idx, r)]


def supervised_sums(n_heads: int, mode: str = "subsets") -> list[tuple[int, ...]]:
    """The head subsets whose summed logits the loss supervises.

    ``subsets``: every non-empty subset (the paper's); ``heads``: each head alone, then all of them;
    ``auxiliary``: each head alone (weighted by :func:`subset_weight`).
    """
    if mode == "subsets":
        return head_subsets(n_heads)
    singles = [(i,) for i in range(n_heads)]
    if mode == "auxiliary":
        return singles
    if mode == "heads":
        return singles + [tuple(range(n_heads))] if n_heads > 1 else singles
    raise ValueError(f"unknown deep-supervision mode {mode!r}; choose 'subsets', 'heads' or 'auxiliary'")


def subset_weight(subset: tuple[int, ...], n_heads: int, mode: str) -> float:
    """Weight of one supervised sum: ``2^-(distance from the finest head)`` in ``auxiliary`` mode, else 1.

    Heads are ordered deepest first, so the finest is ``n_heads - 1``.
    """
    return 2.0 ** (subset[-1] - n_heads + 1) if mode == "auxiliary" else 1.0


def deep_supervision_loss(
    outputs: Sequence[torch.Tensor],
    target: torch.Tensor,
    ce_weight: float = 0.3,
    dice_weight: float = 0.7,
    eps: float = 1e-5,
    mode: str = "subsets",
) -> torch.Tensor:
    """Sum over head subsets of CE + soft Dice on the summed logits (weighted in ``auxiliary`` mode).

    Equal to summing ``F.cross_entropy`` and :func:`soft_dice_loss` over the subsets; the loop shares
    what the 15 terms have in common (one log-softmax per subset gives both CE and the probabilities,
    the one-hot target and its class sums are built once, each subset's sum extends a smaller one),
    which makes the loss about a third cheaper on CPU.

    A head alone may come at a coarser scale (B, C, h, w) that divides (H, W): it is then
    supervised against the targets' average over each of its cells, the class fractions there; a head
    in a sum is bilinearly upsampled to (H, W) first.

    Args:
        outputs: the model's heads, each (B, C, H, W) or, alone in its term, (B, C, h, w).
        target: (B, H, W) class indices (``IGNORE`` = unknown), or (B, C, H, W) class fractions summing
            to 1 per known pixel and to 0 per unknown one (module docstring).
        mode: which head sums are supervised (:func:`supervised_sums`).
    """
    total = outputs[0].new_zeros((), dtype=torch.float32)
    soft = target.is_floating_point()
    # truth: (B, C, H, W), the fractions themselves or the one-hot map of the indices (0 where unknown)
    known: torch.Tensor | None = None  # (B, 1, H, W) each pixel's known share; None: every pixel known
    if soft:
        truth = target.float()
        share = truth.sum(1, keepdim=True)
        if bool((share < _KNOWN).any()):
            known = share
        target_sq = _target_sq(truth, known)
    else:
        unknown = target < 0
        partial = bool(unknown.any())
        truth = F.one_hot(target.clamp(min=0) if partial else target, num_classes=outputs[0].shape[1])
        truth = truth.permute(0, 3, 1, 2).float()
        if partial:
            known = (~unknown)[:, None].float()
            truth = truth * known
        target_sq = truth.sum((0, 2, 3))
    full = truth.shape[-2:]
    # per logit size: the targets there (at a coarser head's size, the class fractions of its cells) and
    # the known share of each of its pixels
    targets = {tuple(full): (truth, target_sq, known)}
    sums: dict[tuple[int, ...], torch.Tensor] = {}
    for subset in supervised_sums(len(outputs), mode):
        weight = subset_weight(subset, len(outputs), mode)
        head = outputs[subset[-1]].float()
        if len(subset) == 1:
            logits = head  # alone, a head keeps its own scale
        elif subset[:-1] in sums:  # extend a smaller sum already made
            logits = _at(sums[subset[:-1]], full) + _at(head, full)
        else:
            logits = torch.stack([_at(outputs[i].float(), full) for i in subset]).sum(0)
        sums[subset] = logits
        size = tuple(logits.shape[-2:])
        if size not in targets:
            small = F.adaptive_avg_pool2d(truth, size)
            share = None if known is None else F.adaptive_avg_pool2d(known, size)
            targets[size] = (small, _target_sq(small, share), share)
        goal, goal_sq, share = targets[size]
        logp = logits.log_softmax(dim=1)
        dice = _dice_from_probs(logp.exp(), goal, goal_sq, eps, share)
        if share is not None:  # the mean over the known pixels (a batch with none known: 0, no NaN)
            ce = -(goal * logp).sum() / share.sum().clamp(min=1e-6)
        elif not soft and size == tuple(full):
            ce = F.nll_loss(logp, target)
        else:
            ce = -(goal * logp).sum(1).mean()
        total = total + weight * (ce_weight * ce + dice_weight * dice)
    return total


def _target_sq(truth: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """Per-class sum of the squared targets (C,), each pixel weighted by its known share ``w``.

    A partly known pixel (a coarse cell, a stroke's edge) holds fractions ``g = w * q`` (``q``: the
    fractions among its known part), and counts as ``w`` of a pixel: ``w * q^2 = g^2 / w``. Without
    that weight a cell one quarter known would reward a sure prediction more than a perfect Dice can,
    and the loss went below 0.
    """
    if known is None:
        return truth.square().sum((0, 2, 3))
    return (truth.square() / known.clamp(min=1e-6)).sum((0, 2, 3))


def _at(logits: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """``logits`` (B, C, h, w) bilinearly resized to ``size`` (no copy when already there)."""
    if logits.shape[-2:] == size:
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
