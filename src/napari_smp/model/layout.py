"""Feature maps in standard NCHW strides, whatever view produced them.

A token-to-map reshape (``(B, HW, C) -> (B, C, H, W)`` through a transpose) and a channel LayerNorm's
permute back both return channels-last views. A convolution follows its input's layout, and on the
CPU with several threads so do the strides of its weight gradient: a 1x1 convolution then returns
``(C_out, C_in, 1, 1)`` gradients with strides ``(C_in, 1, C_in, C_in)``, which DDP's gradient
buckets (laid out like the parameters) refuse with a warning and a copy on every step.
"""

from __future__ import annotations

import torch

__all__ = ["nchw"]


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
