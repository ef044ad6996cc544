"""The DMW-LA encoder: four stages of (downsample, DMW-LA stack, image injection), DS-GIM in stage 3.

The ``paper`` preset downsamples with SegFormer overlapping patch embeddings (research/paper.md §1.2
step 4); the ``lite`` preset with two strided convolutions per stage. Everything after the
downsampling is the same module code in both presets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .blocks import ConvBnAct, ImageInjection, OverlapPatchEmbed
from .dsgim import DSGIM, decay_coefficients
from .memory_bank import DMWLA

__all__ = ["MemoryEncoder", "patch_embed_downsamplers", "conv_downsamplers"]

DSGIM_STAGE = 2  # zero-based: stage 3 holds DS-GIM, as in the official network


def patch_embed_downsamplers(in_channels: int, channels: tuple[int, ...]) -> list[nn.Module]:
    """Overlapping patch embeddings: 7x7 stride 4, then 3x3 stride 2 (the paper's DMW-LA encoder)."""
    ins = (in_channels, *channels[:-1])
    return [
        OverlapPatchEmbed(i, o, kernel_size=7 if s == 0 else 3, stride=4 if s == 0 else 2)
        for s, (i, o) in enumerate(zip(ins, channels, strict=True))
    ]


def conv_downsamplers(in_channels: int, channels: tuple[int, ...]) -> list[nn.Module]:
    """Small CNN: stride 4 (two strided ConvBnAct) for stage 1, then stride 2 + a 3x3 ConvBnAct per stage."""
    first = nn.Sequential(
        ConvBnAct(in_channels, channels[0], stride=2), ConvBnAct(channels[0], channels[0], stride=2)
    )
    rest = [
        nn.Sequential(ConvBnAct(i, o, stride=2), ConvBnAct(o, o))
        for i, o in zip(channels[:-1], channels[1:], strict=True)
    ]
    return [first, *rest]


class EncoderStage(nn.Module):
    """Downsample, then a stack of DMW-LA modules, then the image side input."""

    def __init__(self, down: nn.Module, blocks: list[DMWLA], injection: ImageInjection) -> None:
        super().__init__()
        self.down = down
        self.blocks = nn.ModuleList(blocks)
        self.inject = injection


class MemoryEncoder(nn.Module):
    """Four stages of DMW-LA modules; in stage 3 every module is followed by one shared DS-GIM.

    Args:
        downsamplers: one downsampling module per stage (output channels = ``channels[i]``).
        channels: stage widths, e.g. (96, 192, 384, 768).
        depths: DMW-LA modules per stage, e.g. (2, 2, 6, 2).
        make_dmwla: builds the DMW-LA module of a stage from its width.
        image_channels: channels of the image given to :meth:`forward` (for the side inputs).
        faithful_dsgim: reproduce the official DS-GIM (fixed gamma index, bugs included).
    """

    def __init__(
        self,
        downsamplers: list[nn.Module],
        channels: tuple[int, ...],
        depths: tuple[int, ...],
        make_dmwla: Callable[[int], DMWLA],
        image_channels: int = 3,
        faithful_dsgim: bool = False,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            EncoderStage(down, [make_dmwla(c) for _ in range(d)], ImageInjection(image_channels, c))
            for down, c, d in zip(downsamplers, channels, depths, strict=True)
        )
        # one instance shared by every call, as in the official code (the figure draws one per layer)
        self.dsgim = DSGIM(channels[DSGIM_STAGE], faithful=faithful_dsgim)
        # the figure's stage 3 alternates DMW-LA and DS-GIM over 2 * depth layers, DS-GIM at the odd
        # positions; the official code always uses position 1 (its loop resets the index)
        decay = decay_coefficients(2 * depths[DSGIM_STAGE])
        self.gammas = [decay[1]] * depths[DSGIM_STAGE] if faithful_dsgim else decay[1::2]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encode an image.

        Args:
            x: image, shape (B, 3, H, W).

        Returns:
            Four maps, shallow to deep, shapes (B, channels[i], H / 2^(i+2), W / 2^(i+2)).
        """
        feats, f = [], x
        for s, stage in enumerate(self.stages):
            f = stage.down(f)
            for j, block in enumerate(stage.blocks):
                f = block(f)
                if s == DSGIM_STAGE:
                    f = self.dsgim(f, self.gammas[j])
            f = stage.inject(f, x)
            feats.append(f)
        return feats

    def memory_modules(self, prefix: str = "encoder") -> list[tuple[str, DMWLA]]:
        """Named DMW-LA modules, ``"<prefix>.stage<s>.<j>"`` with s = 1..4 and j from 0."""
        return [
            (f"{prefix}.stage{s + 1}.{j}", block)
            for s, stage in enumerate(self.stages)
            for j, block in enumerate(stage.blocks)
        ]
