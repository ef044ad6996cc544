"""Small building blocks shared by the encoders and the decoder of Sim-MPNet, and :func:`nchw`.

Feature maps leave every token-to-map reshape and channel LayerNorm in standard NCHW strides
(:func:`nchw`): a token-to-map reshape (``(B, HW, C) -> (B, C, H, W)`` through a transpose) and a
channel LayerNorm's permute back both return channels-last views. A convolution follows its input's
layout, and on the CPU with several threads so do the strides of its weight gradient: a 1x1
convolution then returns ``(C_out, C_in, 1, 1)`` gradients with strides ``(C_in, 1, C_in, C_in)``,
which DDP's gradient buckets (laid out like the parameters) refuse with a warning and a copy on every
step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "nchw",
    "ConvBnAct",
    "ConvBlock",
    "UpConv",
    "ChannelAttention",
    "SpatialAttention",
    "OverlapPatchEmbed",
    "ImageInjection",
    "InputGate",
    "ChannelAdapter",
]


def _standard_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def nchw(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, H, W) with the strides of a freshly allocated tensor; a copy only when needed.

    ``contiguous()`` is not enough: at H = W = 1 a channels-last view counts as contiguous already.
    """
    if x.stride() == _standard_strides(x.shape):
        return x
    return x.clone(memory_format=torch.contiguous_format)


class ConvBnAct(nn.Sequential):
    """Convolution (no bias), batch norm, ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel; padding keeps the size at stride 1.
        stride: convolution stride.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ConvBlock(nn.Sequential):
    """Two 3x3 ConvBnAct layers: (B, in, H, W) -> (B, out, H, W).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mid_channels: channels between the two layers (default ``out_channels``).
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        mid = out_channels if mid_channels is None else mid_channels
        super().__init__(ConvBnAct(in_channels, mid), ConvBnAct(mid, out_channels))


class UpConv(nn.Sequential):
    """Nearest x2 upsampling then a 3x3 ConvBnAct: (B, in, H, W) -> (B, out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvBnAct(in_channels, out_channels))


class ChannelAttention(nn.Module):
    """CBAM channel attention (Woo et al., 2018): sigmoid(MLP(avgpool) + MLP(maxpool)).

    Args:
        channels: C.
        ratio: reduction of the shared two-layer 1x1 MLP.
    """

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weights, shape (B, C, 1, 1), from features (B, C, H, W)."""
        return torch.sigmoid(
            self.mlp(x.mean(dim=(2, 3), keepdim=True)) + self.mlp(x.amax(dim=(2, 3), keepdim=True))
        )


class SpatialAttention(nn.Module):
    """CBAM spatial attention: sigmoid(conv7x7([mean over C, max over C]))."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weights, shape (B, 1, H, W), from features (B, C, H, W)."""
        return torch.sigmoid(
            self.conv(torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1))
        )


class OverlapPatchEmbed(nn.Module):
    """SegFormer-style overlapping patch embedding: strided conv, then LayerNorm over channels.

    Args:
        in_channels: input channels.
        out_channels: embedding channels.
        kernel_size: patch size (7 for the first stage, 3 after).
        stride: downsampling factor (4 for the first stage, 2 after).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7, stride: int = 4) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H / stride, W / stride)."""
        x = self.proj(x)
        # a channels-last view here would set the layout of the convs after it (see nchw)
        return nchw(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


class ImageInjection(nn.Module):
    """Side input of the image into a stage: ``f + sigmoid(f) * conv1x1(resize(image))``.

    Args:
        image_channels: channels of the image (3 after the channel adapter).
        channels: channels of the stage.
    """

    def __init__(self, image_channels: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(image_channels, channels, 1)

    def forward(self, f: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Features (B, C, h, w) and image (B, image_channels, H, W) -> (B, C, h, w)."""
        side = F.interpolate(image, size=f.shape[-2:], mode="bilinear", align_corners=False)
        return f + torch.sigmoid(f) * self.proj(side)


class InputGate(nn.Module):
    """Gate the image by the deepest MaxxViT map: ``x * upsample(sigmoid(conv1x1(f4)))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, 1, 1)

    def forward(self, image: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W) and deepest features (B, C, h, w) -> gated image (B, 3, H, W)."""
        gate = torch.sigmoid(self.proj(f))
        return image * F.interpolate(gate, size=image.shape[-2:], mode="bilinear", align_corners=False)


class ChannelAdapter(nn.Sequential):
    """Map ``in_channels`` to the 3 channels the encoders expect: conv1x1, batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
        )
