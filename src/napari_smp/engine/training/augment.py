"""Batch augmentation on the device: flips, right-angle and small rotations, scaling, intensity.

The official recipe (research/paper.md §4) draws rot90 + flip with probability 0.5, otherwise a
rotation of up to 20 degrees. We keep that and add mild scaling and intensity changes, which help
most when only a few slices are painted. Geometry is applied with one ``grid_sample`` per batch:
bilinear for images and for class fractions (soft labels), nearest for class indices, so those never
get fractional values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["augment_batch"]


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    max_rotation: float = 20.0,
    scale_range: tuple[float, float] = (0.85, 1.15),
    rot_flip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random geometric and intensity augmentation of a batch.

    Args:
        images: (B, C, H, W) float in [0, 1].
        labels: (B, H, W) long, or (B, K, H, W) class fractions (channel 0 the background); unknown
            pixels (scribbles) are -1, or have fractions summing to 0.
        generator: a CPU generator, so runs with one seed are identical.
        rot_flip: also the paper's right-angle rotations and mirror flips (they map the right
            kidney onto where the left one was; ``False`` keeps every image's orientation).
    Returns:
        the augmented ``(images, labels)`` with the same shapes.
    """
    b = images.shape[0]
    dev = images.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    # right angles + flips (prob 0.5), else a small rotation (prob 0.5 of the rest), as the paper;
    # without rot_flip every image keeps its orientation and gets the small rotation with prob 0.5
    quarter = torch.randint(0, 4, (b,), generator=generator).to(dev).float() * (math.pi / 2)
    small = (rand(b) * 2 - 1) * math.radians(max_rotation)
    use_quarter = (rand(b) < 0.5) & rot_flip
    use_small = (~use_quarter) & (rand(b) < 0.5)
    angle = torch.where(use_quarter, quarter, torch.where(use_small, small, torch.zeros_like(small)))
    flip = torch.where(use_quarter & (rand(b) < 0.5), -1.0, 1.0)
    scale = scale_range[0] + rand(b) * (scale_range[1] - scale_range[0])

    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # what rotates in from outside a wholly annotated slice is background; on a scribbled slice (some
    # pixel unknown) it is unknown too: nobody said what lies there
    if labels.is_floating_point():
        whole = (labels.sum(1) > 0.999).flatten(1).all(1).float()[:, None, None]
        labels = F.grid_sample(labels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        labels[:, 0] += (1.0 - labels.sum(1)).clamp_(min=0.0) * whole
    else:
        whole = (labels >= 0).flatten(1).all(1)[:, None, None]
        shifted = F.grid_sample(  # indices + 1, so the zero padding is -1: unknown
            labels[:, None].float() + 1, grid, mode="nearest", padding_mode="zeros", align_corners=False
        )
        labels = shifted[:, 0].round().long() - 1
        labels = torch.where(whole & (labels < 0), torch.zeros_like(labels), labels)

    # intensity: gamma, contrast/brightness, then a little noise; images stay in [0, 1]
    gamma = torch.exp((rand(b, 1, 1, 1) * 2 - 1) * 0.3)
    images = images.clamp(0, 1) ** gamma
    contrast = 1 + (rand(b, 1, 1, 1) * 2 - 1) * 0.15
    bright = (rand(b, 1, 1, 1) * 2 - 1) * 0.05
    noise = torch.randn(images.shape, generator=generator).to(dev) * 0.02
    images = ((images - 0.5) * contrast + 0.5 + bright + noise).clamp(0, 1)
    return images, labels
