"""The CA/SA decoder with one DMW-LA module per stage (research/paper.md §1.2 step 6).

Deepest stage: ``d4 = ConvBlock(DMWLA(conv1x1(E4)))``. Then, for j = 3, 2, 1::

    u   = UpConv(d_{j+1})
    s   = u + E_j
    x   = CA_j(s) * s
    x   = SA(x) * x            # one SA module shared by the three stages
    d_j = ConvBlock(DMWLA(u + x))

This is the official code's skip fusion; the figure's formula ``SA(CA(E + D))`` is the same idea.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .blocks import ChannelAttention, ConvBlock, SpatialAttention, UpConv
from .memory_bank import DMWLA

__all__ = ["MemoryDecoder"]


class MemoryDecoder(nn.Module):
    """Decoder over four encoder maps.

    Args:
        channels: stage widths from deep to shallow, e.g. (768, 384, 192, 96).
        make_dmwla: builds a stage's DMW-LA module from its width.
    """

    def __init__(self, channels: tuple[int, ...], make_dmwla: Callable[[int], DMWLA]) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.stem = nn.Conv2d(channels[0], channels[0], 1)
        self.memory = nn.ModuleList(make_dmwla(c) for c in channels)
        self.blocks = nn.ModuleList(ConvBlock(c, c) for c in channels)
        self.ups = nn.ModuleList(UpConv(i, o) for i, o in zip(channels[:-1], channels[1:], strict=True))
        self.ca = nn.ModuleList(ChannelAttention(c) for c in channels[1:])
        self.sa = SpatialAttention()

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Decode.

        Args:
            feats: encoder maps shallow to deep, shapes (B, channels[-1 - i], h_i, w_i), each half the
                size of the previous one.

        Returns:
            Decoded maps deep to shallow (d4, d3, d2, d1), with the shapes of ``feats`` reversed.
        """
        skips = feats[::-1]
        d = self.blocks[0](self.memory[0](self.stem(skips[0])))
        out = [d]
        for j in range(1, len(skips)):
            u = self.ups[j - 1](d)
            s = u + skips[j]
            x = self.ca[j - 1](s) * s
            x = self.sa(x) * x
            d = self.blocks[j](self.memory[j](u + x))
            out.append(d)
        return out

    def memory_modules(self, prefix: str = "decoder") -> list[tuple[str, DMWLA]]:
        """Named DMW-LA modules, ``"<prefix>.stage<s>"`` with s = 4 (deepest) down to 1."""
        n = len(self.memory)
        return [(f"{prefix}.stage{n - j}", m) for j, m in enumerate(self.memory)]
