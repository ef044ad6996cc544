"""Building blocks of the MaxxViT backbone (ConvNeXt conv block, window/grid attention, MLP rel-pos bias).

Attribute names mirror timm's ``maxxvit`` and ``timm.layers`` modules so that an ImageNet state dict saved
by timm loads by name; the code itself is written independently. Conventions: ``NCHW`` tensors are
``(B, C, H, W)``, channels-last tensors are ``(B, H, W, C)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import nchw

__all__ = [
    "ConvMlp",
    "ConvNeXtBlock",
    "Downsample2d",
    "DropPath",
    "LN_EPS",
    "LayerNorm2d",
    "LayerNormAct2d",
    "LayerScale",
    "LayerScale2d",
    "Mlp",
    "PartitionAttention",
    "RelPosMlp",
    "WindowAttention",
    "init_conv_",
    "init_transformer_",
    "partition",
    "unpartition",
]

# ConvNeXt and MaxViT-transformer parts of this model both use eps 1e-6 in their LayerNorms.
LN_EPS = 1e-6


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of an ``(B, C, H, W)`` tensor (parameters ``weight``, ``bias``)."""

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        # a channels-last view here would set the layout of the convs after it (model/blocks.py, nchw)
        return nchw(y.permute(0, 3, 1, 2))


class LayerNormAct2d(LayerNorm2d):
    """:class:`LayerNorm2d` followed by GELU; the stem's norm. Shape-preserving on ``(B, C, H, W)``."""

    def __init__(self, num_channels: int, eps: float = LN_EPS) -> None:
        super().__init__(num_channels, eps=eps)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(super().forward(x))


class DropPath(nn.Module):
    """Stochastic depth: zero a whole residual branch per sample with probability ``p`` while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        # rescale so the expected value of the branch is unchanged
        return x * mask / keep


class LayerScale(nn.Module):
    """Per-channel gain ``gamma`` on a channels-last tensor ``(..., C)``."""

    def __init__(self, dim: int, init_value: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class LayerScale2d(LayerScale):
    """Per-channel gain ``gamma`` on an ``(B, C, H, W)`` tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma[None, :, None, None]


class Mlp(nn.Module):
    """Two linear layers on the last axis: ``(..., in) -> (..., hidden) -> (..., out)``.

    ``drop1`` (after the activation) is used by the rel-pos MLP only; the names match timm's ``Mlp``.
    """

    def __init__(
        self, in_features: int, hidden: int, out_features: int, act: type[nn.Module], drop1: float = 0.0
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.act = act()
        self.drop1 = nn.Dropout(drop1)
        self.fc2 = nn.Linear(hidden, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop1(self.act(self.fc1(x))))


class ConvMlp(nn.Module):
    """Pointwise (1x1 conv) MLP with GELU on ``(B, C, H, W)``, hidden width ``hidden``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Downsample2d(nn.Module):
    """2x2 average pooling, then a 1x1 conv ``expand`` only when the channel count changes.

    ``(B, C_in, H, W) -> (B, C_out, H/2, W/2)``.
    """

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2, stride=2)
        self.expand: nn.Module = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.expand(self.pool(x))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block (7x7 depthwise conv, LayerNorm, 4x pointwise MLP, layer scale) with a residual.

    With ``stride=2`` the depthwise conv itself strides and the shortcut is average pooling (+1x1 conv).
    ``(B, C_in, H, W) -> (B, C_out, H/stride, W/stride)``.
    """

    def __init__(self, dim: int, dim_out: int, stride: int = 1, drop_path: float = 0.0) -> None:
        super().__init__()
        if stride == 2:
            self.shortcut: nn.Module = Downsample2d(dim, dim_out)
        elif dim != dim_out:
            self.shortcut = nn.Conv2d(dim, dim_out, 1)
        else:
            self.shortcut = nn.Identity()
        # groups == dim: one 7x7 filter (or dim_out/dim filters) per input channel
        self.conv_dw = nn.Conv2d(dim, dim_out, 7, stride=stride, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim_out, eps=LN_EPS)
        self.mlp = ConvMlp(dim_out, 4 * dim_out)
        self.ls = LayerScale2d(dim_out)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        branch = self.ls(self.mlp(self.norm(self.conv_dw(x))))
        return self.shortcut(x) + self.drop_path(branch)


def partition(x: Tensor, size: int, grid: bool) -> Tensor:
    """Cut a channels-last map into ``size x size`` token groups for attention.

    Block (window) mode takes contiguous ``size x size`` tiles; grid mode takes tokens that are
    ``H/size`` apart, so every group spans the whole image (MaxViT's dilated "grid" attention).

    Args:
        x: ``(B, H, W, C)``; ``H`` and ``W`` divisible by ``size``.
        size: side of each group.
        grid: grid partition if True, block partition otherwise.

    Returns:
        ``(B * H * W / size**2, size, size, C)``.
    """
    b, h, w, c = x.shape
    if grid:
        # group index = (h % (H/size), w % (W/size)); position inside the group = (h // (H/size), ...)
        x = x.view(b, size, h // size, size, w // size, c).permute(0, 2, 4, 1, 3, 5)
    else:
        x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size, size, c)


def unpartition(groups: Tensor, size: int, grid: bool, hw: tuple[int, int]) -> Tensor:
    """Inverse of :func:`partition`: ``(B * n_groups, size, size, C) -> (B, H, W, C)``."""
    h, w = hw
    c = groups.shape[-1]
    x = groups.view(-1, h // size, w // size, size, size, c)
    if grid:
        x = x.permute(0, 3, 1, 4, 2, 5)
    else:
        x = x.permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class RelPosMlp(nn.Module):
    """Relative position bias produced by a small MLP from log-spaced (dy, dx) offsets.

    The offsets inside a ``window x window`` group range over ``[-(w-1), w-1]`` per axis; each is mapped
    to ``sign(d) * log(1 + |d|)`` (timm's "cr" mode) and the MLP ``2 -> hidden -> num_heads`` (ReLU,
    dropout 0.125 after it while training) turns each offset into one bias per head.
    """

    def __init__(self, window: int, num_heads: int, hidden: int = 512) -> None:
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.mlp = Mlp(2, hidden, num_heads, nn.ReLU, drop1=0.125)
        span = torch.arange(-(window - 1), window, dtype=torch.float32)
        dy, dx = torch.meshgrid(span, span, indexing="ij")
        offsets = torch.stack([dy, dx], dim=-1)  # (2w-1, 2w-1, 2)
        # not saved: both are pure functions of the window size, as in timm
        log_offsets = torch.sign(offsets) * torch.log1p(offsets.abs())
        self.register_buffer("rel_coords_log", log_offsets, persistent=False)
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        # query i, key j -> row of the flattened offset table for (y_i - y_j, x_i - x_j)
        row = ys[:, None] - ys[None, :] + window - 1
        col = xs[:, None] - xs[None, :] + window - 1
        self.register_buffer(
            "relative_position_index", (row * (2 * window - 1) + col).flatten(), persistent=False
        )

    def get_bias(self) -> Tensor:
        """Return the additive attention bias ``(1, num_heads, w*w, w*w)``."""
        table = self.mlp(self.rel_coords_log).reshape(-1, self.num_heads)
        n = self.window * self.window
        bias = table[self.relative_position_index].view(n, n, self.num_heads)
        return bias.permute(2, 0, 1).unsqueeze(0).contiguous()


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each token group, with the MLP relative-position bias.

    The fused ``qkv`` output is laid out head-major (``[head][q, k, v][head_dim]``), which is the layout
    the pretrained ``qkv`` weights expect. ``(N, S, S, C) -> (N, S, S, C)`` with ``S`` the group side.
    """

    def __init__(self, dim: int, window: int, head_dim: int = 32, rel_pos_hidden: int = 512) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"attention width {dim} is not a multiple of the head width {head_dim}")
        self.num_heads = dim // head_dim
        self.head_dim = head_dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.rel_pos = RelPosMlp(window, self.num_heads, rel_pos_hidden)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        n = shape[0]
        qkv = self.qkv(x).view(n, -1, self.num_heads, 3 * self.head_dim).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=-1)  # each (N, heads, S*S, head_dim)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.rel_pos.get_bias())
        return self.proj(out.transpose(1, 2).reshape(shape))


class PartitionAttention(nn.Module):
    """Pre-norm transformer layer (attention + 4x MLP, each with layer scale) on block or grid groups.

    Channels-last: ``(B, H, W, C) -> (B, H, W, C)``; ``H`` and ``W`` must be multiples of ``size``.
    """

    def __init__(self, dim: int, size: int, grid: bool, drop_path: float = 0.0) -> None:
        super().__init__()
        self.size = size
        self.grid = grid
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = WindowAttention(dim, size)
        self.ls1 = LayerScale(dim)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, 4 * dim, dim, nn.GELU)
        self.ls2 = LayerScale(dim)
        self.drop_path2 = DropPath(drop_path)

    def _attend(self, x: Tensor) -> Tensor:
        hw = (x.shape[1], x.shape[2])
        groups = self.attn(partition(x, self.size, self.grid))
        return unpartition(groups, self.size, self.grid, hw)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path1(self.ls1(self._attend(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def init_conv_(module: nn.Module) -> None:
    """EfficientNet-style init for every Conv2d in ``module``: N(0, sqrt(2 / fan_out)), zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_transformer_(module: nn.Module) -> None:
    """ViT-style init for every Linear in ``module``: Xavier-uniform weights, ~0 bias.

    Biases inside MLPs get N(0, 1e-6) rather than exact zeros, following the reference training recipe.
    """
    for name, m in module.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                if "mlp" in name:
                    nn.init.normal_(m.bias, std=1e-6)
                else:
                    nn.init.zeros_(m.bias)
