"""Unlabelled slices for pre-training, prepared once per run: normalised, resized, superpixels cached.

Every axial slice of every volume becomes one sample with its relative position ``(z + 1) / depth``
(the PCL positive rule needs it). Slices are normalised exactly as a fine-tune will normalise them
(``ModelConfig.norm``), so the encoder learns on the input range it will later see. Near-constant slices
(air above the patient, padding) carry nothing to contrast and are dropped. SLIC runs here, once per
slice, never inside the training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ...config import ModelConfig
from ..errors import EngineError
from ..slices import resize_slices, slice_stack
from ..volumes import check_image, normalize_volume
from .heads import PretrainBatch
from .superpixels import COMPACTNESS, default_segments, slic_stack

__all__ = ["SliceBank", "MIN_SLICE_STD"]

MIN_SLICE_STD = 1e-3  # on the [0, 1] scale: below this a slice is treated as empty


class SliceBank:
    """All usable slices of a run.

    Args:
        images: (N, C, S, S) float32 in [0, 1].
        positions: (N,) float32 relative slice positions.
        superpixels: (N, S, S) int32 SLIC ids.
        volume_index: (N,) int64, which input volume each slice came from.
    """

    def __init__(
        self,
        images: torch.Tensor,
        positions: torch.Tensor,
        superpixels: torch.Tensor,
        volume_index: torch.Tensor,
    ) -> None:
        self.images, self.positions = images, positions
        self.superpixels, self.volume_index = superpixels, volume_index

    @classmethod
    def from_volumes(
        cls,
        volumes: Sequence[np.ndarray],
        config: ModelConfig,
        n_segments: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        superpixels: bool = True,
    ) -> SliceBank:
        """Prepare every slice of ``volumes`` ((Z, Y, X) each) for ``config``'s input size and norm.

        ``progress(done, total)`` is called after each slice's superpixels; ``superpixels=False``
        skips SLIC (MACL does not use it) and stores one superpixel per slice.
        """
        if len(volumes) == 0:
            raise EngineError("no volume given: pre-training needs at least one unlabelled 3D image")
        size = int(config.img_size)
        segments = n_segments or default_segments(size)
        images, inputs, positions, owners = [], [], [], []
        for v, vol in enumerate(volumes):
            vol = np.asarray(vol)
            check_image(vol, what=f"volume {v + 1}")
            norm = torch.from_numpy(np.ascontiguousarray(normalize_volume(vol, config.norm)))
            small = resize_slices(norm[:, None], size)[:, 0]
            keep = small.flatten(1).std(dim=1) > MIN_SLICE_STD
            depth = vol.shape[0]
            images.append(small[keep])
            # the network's channels (neighbouring slices with slice_context), before empty slices go
            kept = np.flatnonzero(keep.numpy())
            inputs.append(slice_stack(small.numpy(), kept, config.slice_context, config.in_channels))
            positions.append(((torch.arange(depth, dtype=torch.float32) + 1) / depth)[keep])
            owners.append(torch.full((int(keep.sum()),), v, dtype=torch.long))
        stack = torch.cat(images)
        if len(stack) < 2:
            raise EngineError(
                f"only {len(stack)} non-empty slice(s) in the given volumes; pre-training needs at least 2"
            )
        if superpixels:
            sp = slic_stack(stack.numpy(), segments, COMPACTNESS, progress)
        else:
            sp = np.zeros(stack.shape, np.int32)
        x = torch.cat(inputs).contiguous()
        return cls(x, torch.cat(positions), torch.from_numpy(sp), torch.cat(owners))

    def __len__(self) -> int:
        return len(self.images)

    @property
    def volumes(self) -> int:
        """Number of volumes that gave at least one slice."""
        return int(self.volume_index.unique().numel())

    def sample(self, batch: int, generator: torch.Generator, device: torch.device) -> PretrainBatch:
        """Draw ``batch`` distinct slices (all volumes mixed), moved to ``device``."""
        if batch > len(self):
            pick = torch.randint(0, len(self), (batch,), generator=generator)
        else:
            pick = torch.randperm(len(self), generator=generator)[:batch]
        return PretrainBatch(
            self.images[pick].to(device),
            self.positions[pick].to(device),
            self.superpixels[pick].long().to(device),
        )
