"""The contrastive kernel shared by SuperCL and MACL, and the rules that say which pairs are positive.

Every loss of both methods is a supervised-contrastive (SupCon) loss over ``2N`` vectors (``N`` anchors
seen in two views) with an explicit ``(2N, 2N)`` positive mask (research/pretraining.md §1.5)::

    l_i = -(tau / tau_base) * mean_{p in P(i)} log( exp(s_ip / tau) / sum_{k != i} exp(s_ik / tau) )

with cosine similarities ``s``. Rows are ordered view-major: rows ``0..N-1`` are view 1, rows
``N..2N-1`` view 2, so the two views of anchor ``i`` are rows ``i`` and ``i + N``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "TEMPERATURE",
    "BASE_TEMPERATURE",
    "supcon_loss",
    "two_view_mask",
    "position_mask",
    "label_mask",
    "component_mask",
    "sample_cells",
]

TEMPERATURE = 0.1  # both papers' scripts
BASE_TEMPERATURE = 0.07  # hard-coded in the PCL-derived loss; only rescales it


def supcon_loss(
    features: torch.Tensor,
    positives: torch.Tensor,
    temperature: float = TEMPERATURE,
    base_temperature: float = BASE_TEMPERATURE,
) -> torch.Tensor:
    """Supervised-contrastive loss with an explicit positive mask, batched over leading dimensions.

    Anchors without any positive are left out of the mean (the reference code would divide by zero).

    Args:
        features: (..., 2N, D) vectors; normalised here.
        positives: (..., 2N, 2N) or (2N, 2N) bool, True where column j is a positive of row i.
            The diagonal is ignored.

    Returns:
        Scalar loss, the mean over all anchors that have a positive.
    """
    z = F.normalize(features.float(), dim=-1)
    logits = z @ z.transpose(-1, -2) / temperature
    n = logits.shape[-1]
    self_mask = torch.eye(n, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    pos = positives.to(logits.device).expand_as(logits) & ~self_mask
    count = pos.sum(dim=-1)
    mean_pos = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=-1) / count.clamp_min(1)
    valid = count > 0
    if not bool(valid.any()):
        return features.sum() * 0.0
    return -(temperature / base_temperature) * mean_pos[valid].mean()


def two_view_mask(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Positives = the other view of the same anchor only (SimCLR), shape (2n, 2n) bool."""
    idx = torch.arange(2 * n, device=device)
    return (idx[:, None] % n) == (idx[None, :] % n)


def position_mask(positions: torch.Tensor, threshold: float | None) -> torch.Tensor:
    """PCL's slice-position rule: slices with ``|p_i - p_j| < threshold`` are positives, in both views.

    Args:
        positions: (N,) relative slice positions ``(z + 1) / depth`` in (0, 1].
        threshold: 0.1 in both papers; None keeps only the other view of the same slice.

    Returns:
        (2N, 2N) bool (diagonal True; :func:`supcon_loss` ignores it).
    """
    n = positions.shape[0]
    if threshold is None:
        return two_view_mask(n, positions.device)
    p = torch.cat([positions, positions]).float()
    return (p[:, None] - p[None, :]).abs() < threshold


def label_mask(labels: torch.Tensor) -> torch.Tensor:
    """Positives = equal labels, for labels already stacked over both views.

    Args:
        labels: (..., 2N) integer labels (SuperCL: the superpixel id of each sampled cell, repeated for
            the second view because the two intensity views are aligned).

    Returns:
        (..., 2N, 2N) bool.
    """
    return labels[..., :, None] == labels[..., None, :]


def component_mask(vectors: torch.Tensor) -> torch.Tensor:
    """SuperCL's weak labels: connected components of the 1-nearest-neighbour graph of ``vectors``.

    Every vector is joined to its most cosine-similar other vector; edges are made symmetric and the
    components of that graph are the classes. The two views of each image are always positives.

    Args:
        vectors: (2B, L), rows view-major (row ``i`` and ``i + B`` are the two views of image ``i``).

    Returns:
        (2B, 2B) bool "same component", plus every (i, i + B) pair.
    """
    m = vectors.shape[0]
    if m % 2:
        raise ValueError(f"component_mask needs an even number of rows (two views), got {m}")
    with torch.no_grad():
        z = F.normalize(vectors.detach().float(), dim=1)
        sim = z @ z.T
        sim.fill_diagonal_(-float("inf"))
        nearest = sim.argmax(dim=1).cpu().numpy()
    rows = np.arange(m)
    graph = coo_matrix((np.ones(m), (rows, nearest)), shape=(m, m))
    _, comp = connected_components(graph, directed=True, connection="weak")
    comp_t = torch.from_numpy(comp).to(vectors.device)
    return (comp_t[:, None] == comp_t[None, :]) | two_view_mask(m // 2, vectors.device)


def sample_cells(cells: int, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of the grid cells that enter the pixel loss.

    The official code keeps every ``stride``-th cell of the flattened grid (64 of 1024 at 512x512);
    we draw ``count`` distinct cells at random each step instead, so that over a run every cell is used
    and no fixed row pattern is favoured. All cells when ``count >= cells``.

    Returns:
        (min(count, cells),) long, sorted.
    """
    if count >= cells:
        return torch.arange(cells)
    return torch.randperm(cells, generator=generator)[:count].sort().values
