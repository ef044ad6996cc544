"""A small seeded k-means in torch, used once per memory bank to structure the pool.

The official code calls scikit-learn (or faiss) at the end of the warm-up. We need only a few hundred
points of a few hundred dimensions, so a plain Lloyd iteration with a k-means++ start is enough, runs
on whatever device the bank lives on, and is reproducible from a seed alone.
"""

from __future__ import annotations

import torch

__all__ = ["kmeans", "kmeans_plus_plus"]


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Pick ``k`` starting centroids by D^2 sampling (Arthur and Vassilvitskii, 2007).

    Args:
        x: points, shape (N, D), N >= 1.
        k: number of centroids.
        generator: CPU generator that makes the choice reproducible.

    Returns:
        Centroids, shape (k, D), each a copy of one point of ``x``.
    """
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    d2 = (x - x[first]).pow(2).sum(1)
    for _ in range(1, k):
        weights = d2.double().cpu()
        if float(weights.sum()) <= 0.0:  # every point coincides with a centroid: fall back to uniform
            weights = torch.ones(n, dtype=torch.float64)
        nxt = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(nxt)
        d2 = torch.minimum(d2, (x - x[nxt]).pow(2).sum(1))
    return x[chosen].clone()


def kmeans(
    x: torch.Tensor, k: int, iters: int = 50, seed: int = 0, tol: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean k-means (Lloyd) with a k-means++ start.

    Deterministic for a given ``seed`` and input. A cluster that empties during the iterations is
    re-seeded with the point farthest from its own centroid, so every cluster ends non-empty whenever
    ``x`` holds at least ``k`` distinct points.

    Args:
        x: points, shape (N, D).
        k: number of clusters, 1 <= k.
        iters: maximum number of Lloyd iterations.
        seed: seed of the k-means++ start.
        tol: stop when no centroid moves by more than this (squared euclidean distance).

    Returns:
        ``(centroids, labels)`` with shapes (k, D) and (N,) (int64, values in [0, k)).
    """
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"kmeans needs a non-empty (N, D) tensor, got shape {tuple(x.shape)}")
    if k < 1:
        raise ValueError(f"kmeans needs k >= 1, got {k}")
    x = x.float()
    generator = torch.Generator().manual_seed(seed)
    centroids = kmeans_plus_plus(x, k, generator)
    labels = torch.cdist(x, centroids).argmin(1)
    for _ in range(iters):
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
        empty = (counts == 0).nonzero().flatten().tolist()
        if empty:
            # the farthest points from their own centroids are the ones worst served
            far = (x - new[labels]).pow(2).sum(1)
            for c, idx in zip(empty, far.topk(len(empty)).indices.tolist(), strict=True):
                new[c] = x[idx]
        shift = float((new - centroids).pow(2).sum(1).max())
        centroids = new
        labels = torch.cdist(x, centroids).argmin(1)
        if shift <= tol and not empty:
            break
    return centroids, labels
