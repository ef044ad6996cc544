"""Cluster maps on the image grid, from any set of prototypes (the bank's, k-means', a control's).

A DMW-LA module in the lite network sees the slice at 1/16 or 1/32 of the model grid: its cluster map,
resized by nearest neighbour, is a mosaic of 16- to 64-pixel blocks. Here the per-cell cosine
similarities are brought to the image grid bilinearly and the cluster of a pixel is their argmax there
(:func:`~napari_smp.engine.inference.cluster_purity.grid_assignment`), so cluster borders fall between
cells, where organ borders are, and the similarity maps read as heat maps.

Two feature spaces can be compared with the prototypes: ``"phi"`` (default), the space the bank's slots
are written from and its prototypes are means of (the W-LD write routes these, through the momentum
copy of phi), and ``"theta"``, the queries the memory read routes. The same features are what the
purity benchmark clusters by k-means: the same features, another set of prototypes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...model import ClusterReadout
from ...model.kmeans import kmeans
from ..errors import Cancelled
from ..slices import resize_slices
from ..volumes import check_image, normalize_volume
from .predictor import CancelFn, Predictor, ProgressFn

__all__ = ["ModuleFeatures", "module_features", "similarity_on_grid", "kmeans_prototypes", "cell_mask"]


@dataclass
class ModuleFeatures:
    """The features of one DMW-LA module over some slices.

    Attributes:
        module: the module's name.
        slices: (S,) slice indices.
        theta: (S, D, h, w) float32 features of ``space`` (compared with the prototypes).
        prototypes: (K, D) the bank's prototypes.
        stride: model-input pixels per feature cell.
        warming_up: the bank has not been initialised (its prototypes mean nothing).
        space: ``"phi"`` or ``"theta"``.
    """

    module: str
    slices: np.ndarray
    theta: torch.Tensor
    prototypes: torch.Tensor
    stride: float
    warming_up: bool
    space: str = "phi"


@torch.no_grad()
def module_features(predictor: Predictor, volume: np.ndarray, module: str,
                    slices: Sequence[int] | None = None, progress: ProgressFn | None = None,
                    cancel: CancelFn | None = None, space: str = "phi") -> ModuleFeatures:
    """Read one module's query features on some slices of a volume, normalised as the model was trained.

    Args:
        predictor: the model (``Predictor.model``), on its device.
        volume: (Z, Y, X) intensities.
        module: one of ``predictor.memory_modules()``.
        slices: slice indices (default: all).
        space: ``"phi"`` (the bank's own space) or ``"theta"`` (the read's queries).

    Raises:
        ValueError: no memory bank, or no such module (one sentence, from ``ClusterReadout``).
        Cancelled: ``cancel()`` became true.
    """
    if space not in ("phi", "theta"):
        raise ValueError(f"feature space must be 'phi' or 'theta', got {space!r}")
    check_image(volume)
    norm = normalize_volume(volume, predictor.config.norm)
    index = np.arange(volume.shape[0]) if slices is None else np.asarray(list(slices), dtype=np.int64)
    bs = max(1, int(predictor.infer.batch_size))
    thetas, out = [], {}
    for start in range(0, len(index), bs):
        if cancel is not None and cancel():
            raise Cancelled("cluster computation cancelled")
        chunk = index[start : start + bs]
        out = ClusterReadout(predictor.model).maps(predictor._input(norm, chunk), module)
        thetas.append(out[space].cpu())
        if progress is not None:
            progress(min(start + bs, len(index)), len(index))
    if not out:
        raise ValueError("no slice to read clusters on")
    return ModuleFeatures(module, index, torch.cat(thetas), out["prototypes"].cpu(), float(out["stride"]),
                          bool(out["warming_up"]), space)


@torch.no_grad()
def similarity_on_grid(theta: torch.Tensor, prototypes: torch.Tensor, size: tuple[int, int],
                       chunk: int = 8) -> np.ndarray:
    """Cosine similarity of every cell to every prototype, brought to the image grid bilinearly.

    Args:
        theta: (S, D, h, w) features.
        prototypes: (K, D).
        size: (Y, X) of the image.
        chunk: slices resized at a time (bounds the float32 working memory).

    Returns:
        (K, S, Y, X) float16.
    """
    protos = F.normalize(prototypes.float(), dim=1)
    out = np.empty((protos.shape[0], theta.shape[0], *size), dtype=np.float16)
    for i in range(0, theta.shape[0], chunk):
        t = F.normalize(theta[i : i + chunk].float(), dim=1)
        sim = torch.einsum("sdhw,kd->skhw", t, protos)
        big = F.interpolate(sim, size=size, mode="bilinear", align_corners=False)
        out[:, i : i + chunk] = big.permute(1, 0, 2, 3).half().numpy()
    return out


def cell_mask(mask: np.ndarray, grid: tuple[int, int], share: float = 0.5) -> np.ndarray:
    """Feature cells that lie mostly inside a pixel mask (e.g. the body).

    Args:
        mask: (S, Y, X) bool at the image grid.
        grid: (h, w) feature grid.
        share: least fraction of a cell's pixels inside the mask.

    Returns:
        (S, h, w) bool.
    """
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[:, None]
    frac = resize_slices(m, grid)[:, 0]  # antialiased shrink: the share of the cell inside the mask
    return (frac >= share).numpy()


@torch.no_grad()
def kmeans_prototypes(theta: torch.Tensor, k: int, seed: int = 0, cells: np.ndarray | None = None,
                      iters: int = 50) -> torch.Tensor:
    """k-means of the (L2-normalised) features: an unseeded bank's prototypes, as the paper's warm-up makes.

    Args:
        theta: (S, D, h, w) features.
        k: number of clusters.
        seed: k-means seed.
        cells: (S, h, w) bool, the cells to cluster (e.g. :func:`cell_mask` of the body); None: all.

    Returns:
        (k, D) unit-norm centroids.
    """
    pts = F.normalize(theta.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, theta.shape[1])
    if cells is not None:
        keep = torch.from_numpy(np.asarray(cells, dtype=bool).reshape(-1))
        if bool(keep.any()):
            pts = pts[keep]
    centroids, _ = kmeans(pts, k, iters, seed)
    return F.normalize(centroids, dim=1)
