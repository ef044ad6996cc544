"""Pieces shared by the SuperCL and MACL objectives: the batch, the encoder call, projection heads.

The heads exist only during pre-training and are thrown away afterwards (research/pretraining.md §1.2,
§2.2); only the network's encoder (and, for MACL, its first decoder stages) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["PretrainBatch", "encode", "InstanceHead", "PixelProjector", "set_memory_frozen"]

PROJECTION_DIM = 512  # SuperCL's scripts (--classes 512)


@dataclass
class PretrainBatch:
    """One step's input.

    Attributes:
        images: (B, C, S, S) float in [0, 1], the slices before any view is drawn.
        positions: (B,) relative slice positions ``(z + 1) / depth``.
        superpixels: (B, S, S) long SLIC ids of each slice (from the run's cache).
    """

    images: torch.Tensor
    positions: torch.Tensor
    superpixels: torch.Tensor


def encode(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The lite network's encoder maps, shallow to deep: (B, w * 2^i, S / 2^(i+2), S / 2^(i+2)), i = 0..3.

    This is exactly what the segmentation forward feeds its decoder (the lite preset has no adapter
    or second encoder), DMW-LA modules and DS-GIM included.
    """
    return model.encoder(x)


def set_memory_frozen(model: nn.Module) -> None:
    """Keep every DMW-LA module out of bank writes while the rest of the network trains.

    In pre-training the banks stay in their warm-up state (plain non-local attention over the slice):
    the bank is task state that the fine-tune builds from its own features, and it is not transferred.
    Putting only these modules in eval mode stops the writes; batch norm elsewhere keeps training.
    """
    for _, module in model.memory_modules():
        module.eval()


class InstanceHead(nn.Module):
    """Global average pool then a two-layer MLP: (B, C, h, w) -> (B, out)."""

    def __init__(self, channels: int, hidden: int, out: int = PROJECTION_DIM) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.float().mean(dim=(2, 3)))


class PixelProjector(nn.Module):
    """MACL's auxiliary pixel projector: two 3x3 conv + BN + LeakyReLU, (B, C, h, w) -> (B, out, h, w)."""

    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv2d(out, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.LeakyReLU(0.01, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
