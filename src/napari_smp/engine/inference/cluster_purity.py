"""Purity of memory-bank clusters: how much of what a cluster claims lies in the class it stands for.

numpy/scipy only. Definitions (docs/user-guide.md, "Clusters"; docs/method.md, the bank section):

- **Body**: the pixels that are not the air around the patient (:func:`body_mask`). Air is most of a CT
  slice and every cluster claims some of it, so purity is counted inside the body only.
- **Claimed pixels**: the body pixels whose most similar prototype is the cluster's (the argmax of the
  similarity maps at the image grid, :func:`grid_assignment`).
- **The cluster's class**: the class it is tied to (a class-seeded bank: cluster c = class c) or, for
  an unseeded bank (k-means), the majority class of its claimed pixels.
- **Purity** of cluster c: the share of its claimed pixels that lie in its class. NaN for a cluster
  that claims nothing. Mean purity of a tied bank: over the clusters whose class is present, one that
  claims nothing counting 0; of an unseeded bank: over the clusters that claim pixels (with the number
  of classes they cover beside it, since all may stand for background).
- **Top purity** (R-precision): of the ``n_c`` body pixels most similar to cluster c, where ``n_c`` is
  the number of body pixels of its class, the share in its class. It does not depend on the other
  clusters (a cluster that never wins the argmax still has one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "PurityTable",
    "body_mask",
    "cluster_purity",
    "grid_assignment",
    "otsu_threshold",
    "top_purity",
]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a set of intensities (the cut that maximises the between-class variance).

    Args:
        values: any shape, finite floats.
        bins: histogram bins.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0 or float(v.min()) == float(v.max()):
        return float(v.min()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    # the cut after bin i lies at edge i + 1; with two well-separated modes every cut in the gap
    # scores the same, so take the middle of the best plateau rather than its first edge
    best = np.flatnonzero(between[:-1] >= between[:-1].max() * (1 - 1e-12))
    return float((edges[best[0] + 1] + edges[best[-1] + 1]) / 2)


def body_mask(volume: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """The body on every slice: above the threshold, holes filled, largest connected region kept.

    Args:
        volume: (S, Y, X) intensities (HU, or any scale).
        threshold: intensity cut between air and body; None -> Otsu's threshold of the volume.

    Returns:
        (S, Y, X) bool. The lungs and bowel gas inside the body count as body (holes are filled);
        the table, clothes and noise outside the largest region do not.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"body_mask expects a (S, Y, X) volume, got shape {vol.shape}")
    cut = otsu_threshold(vol) if threshold is None else float(threshold)
    out = np.zeros(vol.shape, dtype=bool)
    for i, plane in enumerate(vol > cut):
        lab, n = ndimage.label(plane)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        out[i] = ndimage.binary_fill_holes(lab == int(np.argmax(sizes)) + 1)
    return out


def grid_assignment(similarity: np.ndarray) -> np.ndarray:
    """Cluster of every pixel from similarity maps already brought to the image grid.

    Taking the argmax after the (bilinear) upsampling rather than upsampling the coarse argmax gives
    boundaries between feature cells instead of blocks of one cell. Ties go to the lower index (a
    class never painted has a copy of background's block and never wins).

    Args:
        similarity: (K, S, Y, X) similarity to each cluster.

    Returns:
        (S, Y, X) int16 cluster index.
    """
    return np.asarray(similarity).argmax(axis=0).astype(np.int16)


@dataclass(frozen=True)
class PurityTable:
    """Purity of every cluster over a set of pixels.

    Attributes:
        counts: (K, C) body pixels claimed by cluster k that lie in class c.
        classes: (K,) class index each cluster stands for (tied or majority; -1 when it claims nothing).
        purity: (K,) share of a cluster's claimed pixels in its class; NaN when it claims nothing.
        tied: True when ``classes`` are the tie of a class-seeded bank, False for majority classes.
    """

    counts: np.ndarray
    classes: np.ndarray
    purity: np.ndarray
    tied: bool

    @property
    def shares(self) -> np.ndarray:
        """(K, C) share of each cluster's claimed pixels in each class; rows of NaN for empty clusters."""
        tot = self.counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, self.counts / np.maximum(tot, 1), np.nan)

    def mean(self, present: np.ndarray | None = None) -> float:
        """Mean purity of the clusters; NaN when none counts.

        Tied clusters: every cluster whose class is present (``present`` (C,) bool; None: all) counts,
        and one that claims nothing scores 0 (a bank collapsed onto background must not look pure).
        Majority clusters (k-means): the clusters that claim pixels.
        """
        pur = self.purity.copy()
        if self.tied:
            keep = self.classes >= 0
            if present is not None:
                keep &= np.array([c >= 0 and bool(present[c]) for c in self.classes])
            pur[keep & ~np.isfinite(pur)] = 0.0
        else:
            keep = np.isfinite(pur)
        return float(pur[keep].mean()) if keep.any() else float("nan")

    def covered(self) -> int:
        """Number of distinct classes the clusters that claim pixels stand for (k-means clusters often
        all stand for background)."""
        return len({int(c) for c, p in zip(self.classes, self.purity, strict=True) if c >= 0 and np.isfinite(p)})


def cluster_purity(assignment: np.ndarray, labels: np.ndarray, k: int, n_classes: int,
                   mask: np.ndarray | None = None, tied: bool | np.ndarray = True) -> PurityTable:
    """Purity of every cluster over the (body) pixels of a stack of slices.

    Args:
        assignment: (S, Y, X) cluster index in [0, k).
        labels: (S, Y, X) class index in [0, n_classes) (a compact index, not the user's values).
        k: number of clusters.
        n_classes: number of classes, background included.
        mask: (S, Y, X) bool, the pixels that count (the body); None: all.
        tied: True: cluster c stands for class c (a class-seeded bank; needs k <= n_classes); a (k,)
            int array: cluster c stands for class ``tied[c]`` (-1: none); False: for its majority class.

    Returns:
        A :class:`PurityTable`.
    """
    if assignment.shape != labels.shape:
        raise ValueError(f"cluster map {assignment.shape} and labels {labels.shape} differ in shape")
    if mask is not None and mask.shape != labels.shape:
        raise ValueError(f"body mask {mask.shape} and labels {labels.shape} differ in shape")
    if isinstance(tied, bool) and tied and k > n_classes:
        raise ValueError(f"a tied bank has one cluster per class; got {k} clusters for {n_classes} classes")
    a = np.asarray(assignment, dtype=np.int64)
    c = np.asarray(labels, dtype=np.int64)
    if mask is not None:
        a, c = a[mask], c[mask]
    a, c = a.ravel(), np.clip(c.ravel(), 0, n_classes - 1)
    counts = np.bincount(a * n_classes + c, minlength=k * n_classes)[: k * n_classes].reshape(k, n_classes)
    totals = counts.sum(axis=1)
    if not isinstance(tied, bool):
        classes = np.asarray(tied, dtype=np.int64)
        if classes.shape != (k,):
            raise ValueError(f"need one tied class per cluster ({k}), got {classes.shape}")
    elif tied:
        classes = np.arange(k)
    else:
        classes = np.where(totals > 0, counts.argmax(axis=1), -1)
    hit = np.where(classes >= 0, counts[np.arange(k), np.clip(classes, 0, n_classes - 1)], 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(totals > 0, hit / np.maximum(totals, 1), np.nan)
    return PurityTable(counts, classes.astype(np.int64), purity.astype(np.float64), tied is not False)


def top_purity(similarity: np.ndarray, labels: np.ndarray, classes: np.ndarray,
               mask: np.ndarray | None = None) -> np.ndarray:
    """R-precision of every cluster: of the ``n`` body pixels most similar to it, where ``n`` is the
    number of body pixels of its class, the share that lie in its class.

    Args:
        similarity: (K, S, Y, X) similarity to each cluster at the image grid.
        labels: (S, Y, X) class index.
        classes: (K,) the class each cluster stands for (-1: none).
        mask: (S, Y, X) bool body; None: all pixels.

    Returns:
        (K,) float64; NaN for a cluster whose class has no body pixel here.
    """
    sim = np.asarray(similarity)
    lab = np.asarray(labels, dtype=np.int64)
    sel = np.ones(lab.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    lab = lab[sel]
    out = np.full(sim.shape[0], np.nan)
    for i, cls in enumerate(np.asarray(classes)):
        n = int((lab == cls).sum()) if cls >= 0 else 0
        if n == 0:
            continue
        s = sim[i][sel].astype(np.float32)
        top = np.argpartition(-s, n - 1)[:n] if n < s.size else np.arange(s.size)
        out[i] = float((lab[top] == cls).mean())
    return out
