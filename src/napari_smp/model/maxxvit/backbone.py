"""MaxxViT-rmlp-small backbone (Encoder A of Sim-MPNet's ``paper`` preset), timm-compatible by name.

The network reproduces the configuration of timm's ``maxxvit_rmlp_small_rw_256``: a two-conv stem
(48, 96 channels, stride 2) and four stages of widths (96, 192, 384, 768) and depths (2, 2, 5, 2).
Every block is ConvNeXt conv -> block (window) attention -> grid attention, with 8x8 partitions at a
256 input and a relative-position bias computed by an MLP from log-spaced offsets ("rmlp"). Parameter
names equal timm's (``stem.*``, ``stages.*``, ``norm.*``) so that timm's ImageNet weights
(``maxxvit_rmlp_small_rw_256.sw_in1k``) load with ``weights.load_pretrained``; only the classifier
(``head.*``) is left out. As in Sim-MPNet's copy of the backbone (``lib/maxxvit_4out.py``), the final
LayerNorm ``norm`` is applied to the last stage output only; stages 1-3 are returned un-normalised.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..blocks import nchw
from .layers import (
    LN_EPS,
    ConvNeXtBlock,
    LayerNorm2d,
    LayerNormAct2d,
    PartitionAttention,
    init_conv_,
    init_transformer_,
)

__all__ = [
    "FEATURE_CHANNELS",
    "FEATURE_STRIDES",
    "PRETRAINED_MEAN",
    "PRETRAINED_STD",
    "MaxxVitBlock",
    "MaxxVitInputError",
    "MaxxVitRmlpSmall",
    "MaxxVitStage",
    "Stem",
]

EMBED_DIMS = (96, 192, 384, 768)
DEPTHS = (2, 2, 5, 2)
STEM_WIDTH = (48, 96)
FEATURE_CHANNELS = EMBED_DIMS
FEATURE_STRIDES = (4, 8, 16, 32)
# timm's ImageNet weights for this model were trained on inputs scaled to [-1, 1]
PRETRAINED_MEAN = (0.5, 0.5, 0.5)
PRETRAINED_STD = (0.5, 0.5, 0.5)
# the partition side is the input side divided by this (256 -> 8), as in timm
_PARTITION_RATIO = 32


class MaxxVitInputError(ValueError):
    """The input tensor or the construction arguments do not fit the backbone."""


class Stem(nn.Module):
    """3x3 conv (stride 2) -> LayerNorm + GELU -> 3x3 conv, no conv biases.

    ``(B, in_chans, H, W) -> (B, 96, H/2, W/2)``.
    """

    def __init__(self, in_chans: int, widths: tuple[int, int] = STEM_WIDTH) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=2, padding=1, bias=False)
        self.norm1 = LayerNormAct2d(widths[0])
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3, stride=1, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.norm1(self.conv1(x)))


class MaxxVitBlock(nn.Module):
    """ConvNeXt block, then block attention, then grid attention (both channels-last inside).

    ``(B, C_in, H, W) -> (B, C_out, H/stride, W/stride)``.
    """

    def __init__(
        self, dim: int, dim_out: int, partition: int, stride: int = 1, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.conv = ConvNeXtBlock(dim, dim_out, stride=stride, drop_path=drop_path)
        self.attn_block = PartitionAttention(dim_out, partition, grid=False, drop_path=drop_path)
        self.attn_grid = PartitionAttention(dim_out, partition, grid=True, drop_path=drop_path)
        init_conv_(self.conv)
        init_transformer_(self.attn_block)
        init_transformer_(self.attn_grid)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)
        x = self.attn_grid(self.attn_block(x))
        # a channels-last view here would set the layout of the convs after it (model/blocks.py, nchw)
        return nchw(x.permute(0, 3, 1, 2))


class MaxxVitStage(nn.Module):
    """``depth`` MaxxViT blocks; the first halves the resolution. ``(B, C_in, H, W) -> (B, C, H/2, W/2)``."""

    def __init__(self, dim: int, dim_out: int, depth: int, partition: int, drop_path: list[float]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *[
                MaxxVitBlock(dim if i == 0 else dim_out, dim_out, partition, 2 if i == 0 else 1, drop_path[i])
                for i in range(depth)
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class MaxxVitRmlpSmall(nn.Module):
    """MaxxViT-rmlp-small (timm ``maxxvit_rmlp_small_rw_256`` without its classifier ``head``).

    Args:
        in_chans: input channels of the stem (3 for ImageNet weights).
        img_size: side of the square training input; fixes the attention partition (``img_size // 32``).
        drop_path_rate: stochastic-depth rate, rising linearly over the 11 blocks from 0 to this value.

    Attributes:
        feature_channels: channels of the 4 stage outputs, (96, 192, 384, 768).
        feature_strides: their strides relative to the input, (4, 8, 16, 32).
    """

    def __init__(self, in_chans: int = 3, img_size: int = 256, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if in_chans < 1:
            raise MaxxVitInputError(f"in_chans must be at least 1, got {in_chans}.")
        if img_size < _PARTITION_RATIO or img_size % _PARTITION_RATIO:
            raise MaxxVitInputError(f"img_size must be a positive multiple of 32, got {img_size}.")
        if not 0.0 <= drop_path_rate < 1.0:
            raise MaxxVitInputError(f"drop_path_rate must lie in [0, 1), got {drop_path_rate}.")
        self.in_chans = in_chans
        self.img_size = img_size
        self.partition_size = img_size // _PARTITION_RATIO
        self.feature_channels = FEATURE_CHANNELS
        self.feature_strides = FEATURE_STRIDES

        self.stem = Stem(in_chans)
        init_conv_(self.stem)
        rates = torch.linspace(0.0, drop_path_rate, sum(DEPTHS)).tolist()
        stages = []
        dim, start = STEM_WIDTH[1], 0
        for dim_out, depth in zip(EMBED_DIMS, DEPTHS, strict=True):
            stages.append(
                MaxxVitStage(dim, dim_out, depth, self.partition_size, rates[start : start + depth])
            )
            dim, start = dim_out, start + depth
        self.stages = nn.Sequential(*stages)
        self.norm = LayerNorm2d(EMBED_DIMS[-1], eps=LN_EPS)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise MaxxVitInputError(
                f"expected a (B, {self.in_chans}, H, W) tensor, got shape {tuple(x.shape)}."
            )
        # the deepest map (stride 32) must still tile into partition x partition groups
        multiple = _PARTITION_RATIO * self.partition_size
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise MaxxVitInputError(
                f"input height and width must be multiples of {multiple} for img_size {self.img_size}, "
                f"got {x.shape[2]}x{x.shape[3]}; resize the input to {self.img_size}x{self.img_size}."
            )

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Run the stem and the 4 stages.

        Args:
            x: ``(B, in_chans, H, W)`` with ``H``, ``W`` multiples of ``img_size`` (256 by default).

        Returns:
            The 4 stage outputs, channels-first: ``(B, 96, H/4, W/4)``, ``(B, 192, H/8, W/8)``,
            ``(B, 384, H/16, W/16)``, ``(B, 768, H/32, W/32)``; the last one after the final ``norm``.
        """
        self._check_input(x)
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        features[-1] = self.norm(features[-1])
        return features

    def forward(self, x: Tensor) -> list[Tensor]:
        """Alias of :meth:`forward_features`."""
        return self.forward_features(x)
