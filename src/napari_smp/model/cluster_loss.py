"""The cluster loss of a class-seeded memory bank, and the class shares of feature cells it reads.

A class-seeded bank starts with cluster c = class c (memory_bank.py). Nothing in the paper's training
keeps the nearest prototype of a cell its class's: theta is trained only through attention weights,
and W-LD moves the prototypes. This loss asks for it directly (issue 30; ``memory.prototype_loss``):
the softmax over the cell's cosine similarities to the prototypes should match the classes the cell
holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cell_shares", "cluster_loss"]


def cell_shares(targets: torch.Tensor, classes: int, grid: tuple[int, int]) -> torch.Tensor:
    """Share of each feature cell's pixels in each class.

    Args:
        targets: (B, S, S) class indices at the input size (values outside [0, classes) are clamped).
        classes: k.
        grid: (h, w) of the feature map.

    Returns:
        (B * h * w, k) float32, rows summing to 1, cells in row-major order per image.
    """
    onehot = F.one_hot(targets.long().clamp(0, classes - 1), classes).permute(0, 3, 1, 2).float()
    return F.adaptive_avg_pool2d(onehot, grid).permute(0, 2, 3, 1).reshape(-1, classes)


def cluster_loss(feats: torch.Tensor, prototypes: torch.Tensor, share: torch.Tensor,
                 temperature: float) -> torch.Tensor:
    """Cross-entropy of the cells' prototype similarities against the classes they hold.

    The logits of cell i are ``cos(feats_i, prototype_c) / temperature``; the target is the share of
    the cell's pixels in each class (a cell across a border has two). A class never painted carries
    background's prototype (the bank copies block 0 into it) and is left out of the softmax: counted,
    it would halve every background cell's odds.

    Args:
        feats: (N, D) cell features, with gradient.
        prototypes: (k, D) the bank's prototypes (no gradient).
        share: (N, k) share of each cell's pixels in each class.
        temperature: cosine similarities are divided by it.

    Returns:
        Scalar mean loss over the cells.
    """
    protos = F.normalize(prototypes.float(), dim=1)
    logits = F.normalize(feats.float(), dim=1) @ protos.T / temperature
    absent = (protos - protos[:1]).abs().sum(dim=1) == 0
    absent[0] = False
    logits = logits.masked_fill(absent, -1e4)
    return -(share * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
