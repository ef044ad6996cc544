"""The CA/SA decoder with one DMW-LA module per stage (research/paper.md §1.2 step 6).

Deepest stage: ``d4 = ConvBlock(DMWLA(conv1x1(E4)))``. Then, for j = 3, 2, 1::

    u   = UpConv(d_{j+1})
    s   = u + E_j
    x   = CA_j(s) * s
    x   = SA(x) * x            # one SA module shared by the three stages
    d_j = ConvBlock(DMWLA(u + x))

This is the official code's skip fusion; the figure's formula ``SA(CA(E + D))`` is the same idea.

Also here: lite's :class:`FineDecoder` (two more stages, 1/4 -> 1/2 -> 1/1, through the skips of
:class:`~napari_smp.model.encoder.FineEncoder`) and the :class:`Heads`, one 1x1 convolution per
decoded map (deep supervision).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ChannelAttention, ConvBlock, SpatialAttention, UpConv

__all__ = ["MemoryDecoder", "FineDecoder", "Heads"]


class MemoryDecoder(nn.Module):
    """Decoder over four encoder maps.

    Args:
        channels: stage widths from deep to shallow, e.g. (768, 384, 192, 96).
        make_dmwla: builds a stage's DMW-LA module (or an identity) from its width.
    """

    def __init__(self, channels: tuple[int, ...], make_dmwla: Callable[[int], nn.Module]) -> None:
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

    def memory_modules(self, prefix: str = "decoder") -> list[tuple[str, nn.Module]]:
        """The stages' modules named ``"<prefix>.stage<s>"``, s = 4 (deepest) down to 1 (identities included)."""
        n = len(self.memory)
        return [(f"{prefix}.stage{n - j}", m) for j, m in enumerate(self.memory)]


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
        """``d`` (B, in_channels, S/4, S/4) and ``fine`` (FineEncoder's two maps) -> (B, widths[0], S, S)."""
        half = self.block_half(torch.cat([self.up_half(d), fine[1]], dim=1))
        return self.block_full(torch.cat([self.up_full(half), fine[0]], dim=1))


class Heads(nn.ModuleList):
    """One 1x1 convolution to class logits per decoded map, deepest first (deep supervision).

    A list, so the heads keep the checkpoint names ``heads.<i>.*`` whatever builds them.
    """

    def forward(  # type: ignore[override]
        self, decoded: list[torch.Tensor], size: tuple[int, int], auxiliary: bool, all_heads: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """Logits of the decoded maps.

        Args:
            decoded: decoder maps, deepest first, (B, C_i, h_i, w_i).
            size: (S, S), the input size.
            auxiliary: the finest head is the answer and the coarser heads are training-only auxiliaries:
                in training they stay at their own scale, in eval only the finest head is computed.
            all_heads: in eval, every head whatever ``auxiliary`` says (to compare the answers).

        Returns:
            Logits (B, num_classes, S, S), deepest first; with ``auxiliary`` in training the coarser
            ones at their own scale (B, num_classes, h_i, w_i), in eval only the finest.
        """
        pairs = list(zip(self, decoded, strict=True))
        if not self.training and auxiliary and not all_heads:
            pairs = pairs[-1:]  # the answer; the coarser heads only shaped the features in training
        logits = [head(d) for head, d in pairs]
        # training-only auxiliaries stay at their own scale; the loss pools the targets to meet them
        # (nnU-Net's way): upsampling four heads and their loss terms to S x S cost a fifth of a step
        keep = len(logits) - 1 if self.training and auxiliary else 0
        return tuple(
            out if i < keep else F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            for i, out in enumerate(logits)
        )
