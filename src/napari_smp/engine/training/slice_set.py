"""The annotated slices of a run, normalised and resized once, sampled into training batches."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...config import ModelConfig
from ..errors import EngineError
from ..slices import resize_labels, resize_slices, resize_soft_labels, slice_stack
from ..volumes import normalize_volume
from .losses import IGNORE

__all__ = ["SliceSet"]


def _fractions_u8(fractions: torch.Tensor) -> torch.Tensor:
    """(N, K, S, S) class fractions in [0, 1] -> uint8 in steps of 1/255 (``SliceSet.sample`` undoes it)."""
    return fractions.mul(255).round_().to(torch.uint8)


class SliceSet:
    """Annotated slices, normalised and resized once, sampled into batches.

    Args:
        images: (N, C, S, S) float32 in [0, 1].
        labels: (N, S, S) long class indices, or (N, K, S, S) class fractions (``resize_soft_labels``),
            kept in steps of 1/255 as uint8: an eighth of float32, and less than int64 indices for up
            to 8 classes, which matters when ``train`` holds a whole dataset's slices. Unknown pixels
            (scribbles) are ``losses.IGNORE`` as indices, and have no class (fractions summing to 0).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) == 0:
            raise EngineError("no annotated slice: paint at least one axial slice")
        self.images = images
        self.labels = _fractions_u8(labels) if labels.is_floating_point() else labels

    @classmethod
    def from_volume(
        cls,
        image: np.ndarray,
        labels: np.ndarray,
        index: np.ndarray,
        config: ModelConfig,
        soft: bool = False,
        to_index: Callable[[np.ndarray], np.ndarray] | None = None,
        known: np.ndarray | None = None,
    ) -> SliceSet:
        """The slices ``index`` of a volume.

        Args:
            labels: (Z, Y, X) label map in the user's values.
            soft: targets as class fractions (``TrainConfig.soft_labels``).
            to_index: user values -> the model's class indices (``ClassTable.to_index``); default: the
                values are the indices.
            known: (Z, Y, X) bool, the pixels whose label is known (scribbles); None: every pixel of
                the slices ``index`` (whole slices, 0 = background).
        """
        x = slice_stack(normalize_volume(image, config.norm), index, config.slice_context, config.in_channels)
        x = resize_slices(x, config.img_size).contiguous()
        painted = labels[index] if to_index is None else to_index(labels[index])
        if known is not None:
            painted = np.where(known[index], painted.astype(np.int64, copy=False), IGNORE)
        y = torch.from_numpy(np.ascontiguousarray(painted))
        if not soft:
            return cls(x, resize_labels(y, config.img_size))
        # a few slices at a time: the one-hot map at the source size is K float32 images per slice
        step = 16
        parts = [
            _fractions_u8(resize_soft_labels(y[i : i + step], config.num_classes, config.img_size))
            for i in range(0, len(y), step)
        ]
        return cls(x, torch.cat(parts))

    @classmethod
    def concat(cls, parts: list[SliceSet]) -> SliceSet:
        return cls(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, S, S) images and their (B, S, S) labels or (B, K, S, S) float32 class fractions."""
        pick = torch.randint(0, len(self), (batch,), generator=generator)
        y = self.labels[pick]
        if y.dim() == 4:
            y = y.float()
            total = y.sum(1, keepdim=True)
            # a known pixel's sum drifts by at most K/2 steps of 1/255: undo that so it sums to 1 again;
            # a pixel at a stroke's edge keeps its known share, an unknown one stays at 0
            known = total >= 255.0 - y.shape[1]
            y = y / torch.where(known, total, torch.full_like(total, 255.0))
        return self.images[pick], y
