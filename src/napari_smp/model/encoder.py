"""The DMW-LA encoder (the paper's encoder B) and the lite preset's shallow full-resolution path.

:class:`MemoryEncoder`: four stages of (downsample, DMW-LA stack, image side input), with DS-GIM after
every DMW-LA module of stage 3. The ``paper`` preset downsamples with SegFormer overlapping patch
embeddings (research/paper.md §1.2 step 4), the ``lite`` preset with strided convolutions; everything
after the downsampling is the same code in both.

:class:`FineEncoder`: lite's plain convolutions at 1/1 and 1/2, the skips of the two extra decoder
stages (decoder.py, :class:`~napari_smp.model.decoder.FineDecoder`). DMW-LA starts at 1/4, where
attention over the map is still cheap; thin and small organs need the finer scales.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .blocks import ConvBlock, ConvBnAct, ImageInjection, OverlapPatchEmbed
from .dsgim import DSGIM, decay_coefficients

__all__ = ["MemoryEncoder", "EncoderStage", "FineEncoder", "patch_embed_downsamplers", "conv_downsamplers"]

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
    """Downsample, a stack of DMW-LA modules (each followed by DS-GIM where given), the image side input.

    Args:
        down: the downsampling module, to this stage's width C.
        blocks: the stage's DMW-LA modules (identities where the network has no bank).
        injection: the image side input of the stage.
    """

    def __init__(self, down: nn.Module, blocks: list[nn.Module], injection: ImageInjection) -> None:
        super().__init__()
        self.down = down
        self.blocks = nn.ModuleList(blocks)
        self.inject = injection

    def forward(
        self,
        f: torch.Tensor,
        image: torch.Tensor,
        dsgim: DSGIM | None = None,
        gammas: Sequence[float] = (),
    ) -> torch.Tensor:
        """Encode one stage.

        Args:
            f: the previous stage's map (B, C_prev, 2h, 2w), or the image for stage 1.
            image: the encoder's input image (B, C_img, H, W), for the side input.
            dsgim: applied after every DMW-LA module, with ``gammas[j]`` after module j (stage 3).
            gammas: DS-GIM's decay coefficient per call.

        Returns:
            The stage's map, (B, C, h, w).
        """
        f = self.down(f)
        for j, dmwla in enumerate(self.blocks):
            f = dmwla(f)
            if dsgim is not None:
                f = dsgim(f, gammas[j])
        return self.inject(f, image)


class MemoryEncoder(nn.Module):
    """Four stages of DMW-LA modules; in stage 3 every module is followed by one shared DS-GIM.

    Args:
        downsamplers: one downsampling module per stage (output channels = ``channels[i]``).
        channels: stage widths, e.g. (96, 192, 384, 768).
        depths: DMW-LA modules per stage, e.g. (2, 2, 6, 2).
        make_dmwla: builds a stage's DMW-LA module (or an identity) from its width.
        image_channels: channels of the image given to :meth:`forward` (for the side inputs).
        faithful_dsgim: reproduce the official DS-GIM (fixed gamma index, bugs included).
    """

    def __init__(
        self,
        downsamplers: list[nn.Module],
        channels: tuple[int, ...],
        depths: tuple[int, ...],
        make_dmwla: Callable[[int], nn.Module],
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

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Encode an image (B, C_img, H, W) into e1..e4, shallow to deep: (B, channels[i], H / 2^(i+2), W / 2^(i+2))."""
        stage1, stage2, stage3, stage4 = self.stages
        e1 = stage1(image, image)  # 1/4: DMW-LA
        e2 = stage2(e1, image)  # 1/8: DMW-LA
        e3 = stage3(e2, image, self.dsgim, self.gammas)  # 1/16: DMW-LA and DS-GIM alternate
        e4 = stage4(e3, image)  # 1/32: DMW-LA
        return [e1, e2, e3, e4]

    def memory_modules(self, prefix: str = "encoder") -> list[tuple[str, nn.Module]]:
        """Every stage's modules named ``"<prefix>.stage<s>.<j>"``, s = 1..4 and j from 0 (identities included)."""
        return [
            (f"{prefix}.stage{s + 1}.{j}", block)
            for s, stage in enumerate(self.stages)
            for j, block in enumerate(stage.blocks)
        ]


class FineEncoder(nn.Module):
    """Image ``(B, C_in, S, S)`` -> ``[(B, widths[0], S, S), (B, widths[1], S/2, S/2)]`` (lite only)."""

    def __init__(self, in_channels: int, widths: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        self.full = ConvBlock(in_channels, widths[0])
        self.halved = nn.Sequential(ConvBnAct(widths[0], widths[1], stride=2), ConvBnAct(widths[1], widths[1]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The two skips, full resolution first."""
        full = self.full(x)
        return [full, self.halved(full)]
