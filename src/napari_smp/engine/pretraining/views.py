"""The four views of a slice that SuperCL and MACL contrast (research/pretraining.md §1.3, §4.2).

* Spatial-invariance group ``I1, I2``: intensity-only, so the two stay pixel-aligned with the slice and
  with its cached superpixels. The official chain (brightness, contrast, 3x3 Gaussian blur with sigma in
  [1, 3], min-max) is mostly a blur, because min-max undoes the affine jitter; we apply the blur and a
  mild contrast change and keep the fine-tune's intensity range (no per-slice min-max).
* Spatial-variance group ``V1 = T(I1), V2 = T(I2)``: random flips of both axes, then with probability
  0.67 an in-plane rotation in [0, 2 pi), a scale in [0.7, 1.3] and a smooth elastic displacement,
  otherwise a random crop (70-100 % of the side) resized back. batchgenerators is not used; one
  ``grid_sample`` per batch does the geometry.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["intensity_view", "spatial_view", "make_views"]

SPATIAL_P = 0.67
ELASTIC_GRID = 4  # control points per side of the random displacement field
ELASTIC_MAX = 0.06  # largest displacement, as a fraction of the side (about alpha / sigma of the code)


def _rand(shape: tuple[int, ...], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=gen).to(device)


def intensity_view(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blur each image with a 3x3 Gaussian of random sigma in [1, 3], then jitter contrast by +-20 %.

    Args:
        images: (B, C, H, W) float in [0, 1].

    Returns:
        (B, C, H, W) float in [0, 1], pixel-aligned with the input.
    """
    b, c, h, w = images.shape
    dev = images.device
    sigma = 1.0 + 2.0 * _rand((b,), gen, dev)
    offsets = torch.tensor([-1.0, 0.0, 1.0], device=dev)
    k1 = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None] ** 2))
    k1 = k1 / k1.sum(dim=1, keepdim=True)
    kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, dim=0)[:, None]  # (B*C, 1, 3, 3)
    padded = F.pad(images.reshape(1, b * c, h, w), (1, 1, 1, 1), mode="replicate")
    blurred = F.conv2d(padded, kernel, groups=b * c).reshape(b, c, h, w)
    contrast = 0.8 + 0.4 * _rand((b, 1, 1, 1), gen, dev)
    mean = blurred.mean(dim=(1, 2, 3), keepdim=True)
    return ((blurred - mean) * contrast + mean).clamp(0.0, 1.0)


def spatial_view(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flips, then rotation + scale + elastic (p = 0.67) or a random crop, in one ``grid_sample``.

    Args:
        images: (B, C, H, W) float.

    Returns:
        (B, C, H, W) float, zero outside the warped slice (the code's constant border).
    """
    b, _, h, w = images.shape
    dev = images.device
    flip_x = torch.where(_rand((b,), gen, dev) < 0.5, -1.0, 1.0)
    flip_y = torch.where(_rand((b,), gen, dev) < 0.5, -1.0, 1.0)
    deform = _rand((b,), gen, dev) < SPATIAL_P
    angle = torch.where(deform, _rand((b,), gen, dev) * 2 * math.pi, torch.zeros(b, device=dev))
    scale = torch.where(deform, 0.7 + 0.6 * _rand((b,), gen, dev), torch.ones(b, device=dev))
    # crop branch: a window of 70-100 % of the side at a random place, stretched to the full size
    crop = torch.where(deform, torch.ones(b, device=dev), 0.7 + 0.3 * _rand((b,), gen, dev))
    shift = (1 - crop)[:, None] * (2 * _rand((b, 2), gen, dev) - 1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = cos * crop * flip_x, -sin * crop * flip_y
    theta[:, 1, 0], theta[:, 1, 1] = sin * crop * flip_x, cos * crop * flip_y
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    coarse = (2 * _rand((b, 2, ELASTIC_GRID, ELASTIC_GRID), gen, dev) - 1) * (2 * ELASTIC_MAX)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    grid = grid + field.permute(0, 2, 3, 1) * deform[:, None, None, None].float()
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def make_views(
    images: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four views ``(I1, I2, V1, V2)`` of a batch of slices, each (B, C, H, W)."""
    i1, i2 = intensity_view(images, gen), intensity_view(images, gen)
    return i1, i2, spatial_view(i1, gen), spatial_view(i2, gen)
