"""The lite preset's full-resolution path: a shallow encoder at 1/1 and 1/2, and the two decoder
stages that bring the 1/4 decoder output back to the input size through those skips (U-Net style).

The DMW-LA stages start at 1/4, where attention over the map is still cheap; thin and small organs
(pancreas, adrenal glands, vessels) need the finer scales, which plain convolutions serve here.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBlock, ConvBnAct, UpConv

__all__ = ["FineEncoder", "FineDecoder"]


class FineEncoder(nn.Module):
    """Image ``(B, C_in, S, S)`` -> ``[(B, widths[0], S, S), (B, widths[1], S/2, S/2)]``."""

    def __init__(self, in_channels: int, widths: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        self.full = ConvBlock(in_channels, widths[0])
        self.halved = nn.Sequential(ConvBnAct(widths[0], widths[1], stride=2), ConvBnAct(widths[1], widths[1]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        full = self.full(x)
        return [full, self.halved(full)]


class FineDecoder(nn.Module):
    """Decoder output at 1/4 ``(B, in_channels, S/4, S/4)`` and the fine maps -> ``(B, widths[0], S, S)``.

    Each stage upsamples, concatenates the skip of its scale and mixes with two 3x3 convolutions.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        self.up_half = UpConv(in_channels, widths[1])
        self.block_half = ConvBlock(2 * widths[1], widths[1])
        self.up_full = UpConv(widths[1], widths[0])
        self.block_full = ConvBlock(2 * widths[0], widths[0])

    def forward(self, d: torch.Tensor, fine: list[torch.Tensor]) -> torch.Tensor:
        half = self.block_half(torch.cat([self.up_half(d), fine[1]], dim=1))
        return self.block_full(torch.cat([self.up_full(half), fine[0]], dim=1))
