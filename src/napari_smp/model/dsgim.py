"""DS-GIM: Double-Similarity Global Internal enhancement Module (research/paper.md §3).

Cosine part: the map is cut into four windows (top-left, top-right, bottom-left, bottom-right); the two
most self-similar windows (sum of pairwise token cosines) are damped in the query branch and the two
others in the key branch. Euclidean part: the distance between the row means of the attention logits
splits every row into a "far" half and a "near" half, each softmax-normalised on its own; both are
applied to the values and summed. No residual: the output replaces the input, as in the official code.

``faithful=False`` (default) computes what the paper's figure describes; ``faithful=True`` reproduces the
official code bit for bit, bugs included (see :class:`DSGIM`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import ConvBlock, nchw

__all__ = ["DSGIM", "decay_coefficients", "window_self_similarity"]


def decay_coefficients(layers: int) -> list[float]:
    """The official decay schedule ``exp(-(1/4 - 2^(-2.5 - 5 i / L)))`` for i = 0..L-1."""
    return [math.exp(-(0.25 - 2.0 ** (-2.5 - 5.0 * i / layers))) for i in range(layers)]


def window_self_similarity(x: torch.Tensor) -> torch.Tensor:
    """Sum of cosine similarities over token pairs i <= j inside each of the four windows.

    Uses ``sum_{i<=j} cos = (|sum_i x_i/|x_i||^2 + n) / 2``, so no (n, n) matrix is built.

    Args:
        x: features, shape (B, C, H, W) with even H and W.

    Returns:
        Scores, shape (B, 4), windows ordered top-left, top-right, bottom-left, bottom-right.
    """
    b, c, h, w = x.shape
    unit = nn.functional.normalize(x.float(), dim=1)
    win = unit.view(b, c, 2, h // 2, 2, w // 2).sum(dim=(3, 5))  # (B, C, 2, 2)
    n = (h // 2) * (w // 2)
    return ((win.pow(2).sum(dim=1) + n) / 2).reshape(b, 4)


class DSGIM(nn.Module):
    """DS-GIM for any C and any even H, W (the official code fixes C=384, H=W=14).

    Intended behaviour (default):

    - per sample, the two most self-similar windows get weight gamma in the query mask and 1 in the
      key mask, the other two windows the reverse (the official code zeroes instead of damping);
    - gamma is the decay coefficient of the call, passed by the caller;
    - "near" mask = complement of the "far" mask (the diagonal belongs to "far"); masked logits are
      excluded from their softmax (a row with nothing left contributes zero).

    Faithful behaviour (``faithful=True``), as in the official ``lib/dsgim.py``:

    - masks are integer 0/1 tensors and batch element 0's masks are overwritten with ``int(gamma) = 0``,
      so element 0 of every batch (the only element at batch 1) loses both masked branches and the
      module reduces to global average pooling of V followed by FC and ConvBlock;
    - the "near" mask compares the 0/1 "far" mask, not the distance, with the threshold;
    - every exact zero of the masked logits becomes -100 before the softmax.

    Args:
        channels: C.
        faithful: reproduce the official code.
    """

    def __init__(self, channels: int, faithful: bool = False) -> None:
        super().__init__()
        self.faithful = faithful
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.fc = nn.Linear(channels, channels)
        self.conv = ConvBlock(channels, channels, mid_channels=max(channels // 4, 1))

    def forward(self, x: torch.Tensor, gamma: float) -> torch.Tensor:
        """Apply DS-GIM.

        Args:
            x: features, shape (B, C, H, W); H and W even.
            gamma: decay coefficient of this call (ignored in faithful mode, where it truncates to 0).

        Returns:
            Enhanced features, shape (B, C, H, W).
        """
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"DS-GIM needs an even feature map to cut into 4 windows, got {h}x{w}")
        mask_q, mask_k = self._window_masks(x, gamma)
        q = self.q(x * mask_q).flatten(2).transpose(1, 2)  # (B, HW, C)
        k = self.k(x * mask_k).flatten(2)  # (B, C, HW)
        v = self.v(x).flatten(2).transpose(1, 2)
        logits = q @ k  # (B, HW, HW), unscaled as in the official code
        far, near = self._euclidean_split(logits)
        if self.faithful:
            w_far = _zeros_to(logits * far, -100.0).softmax(dim=-1)
            w_near = _zeros_to(logits * near, -100.0).softmax(dim=-1)
        else:
            w_far = _masked_softmax(logits, far)
            w_near = _masked_softmax(logits, near)
        z = self.fc((w_far + w_near) @ v)  # (B, HW, C)
        # a channels-last view here would set the layout of the convs after it (model/blocks.py, nchw)
        return self.conv(nchw(z.transpose(1, 2).reshape(b, c, h, w)))

    def _window_masks(self, x: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        with torch.no_grad():
            top2 = window_self_similarity(x).topk(2, dim=1).indices  # (B, 2)
            selected = torch.zeros(b, 4, dtype=torch.bool, device=x.device).scatter_(1, top2, True)
            selected = selected.view(b, 1, 2, 1, 2, 1).expand(b, 1, 2, h // 2, 2, w // 2).reshape(b, 1, h, w)
        if self.faithful:
            mask_q = (~selected).long()
            mask_k = 1 - mask_q
            mask_q[0] = int(gamma)  # the official assignment into an int64 tensor: 0.889 -> 0
            mask_k[0] = int(gamma)
            return mask_q.to(x.dtype), mask_k.to(x.dtype)
        one, damp = x.new_ones(()), x.new_tensor(gamma)
        return torch.where(selected, damp, one), torch.where(selected, one, damp)

    def _euclidean_split(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            n = logits.shape[-1]
            mean = logits.float().mean(dim=-1)  # (B, HW)
            dist = (mean[:, :, None] - mean[:, None, :]).abs()
            tau = dist.topk(n // 2, dim=-1).values[..., -1:]  # (B, HW, 1): the (HW/2)-th largest
            eye = torch.eye(n, device=logits.device, dtype=torch.bool)
            far = (dist + 10000.0 * eye) >= tau
            if self.faithful:
                near = far.float() <= tau  # compares the 0/1 mask with the threshold (official bug)
            else:
                near = ~far
        return far.to(logits.dtype), near.to(logits.dtype)


def _zeros_to(t: torch.Tensor, value: float) -> torch.Tensor:
    return t.masked_fill(t == 0, value)


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = logits.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)
    return weights.nan_to_num(0.0)  # rows with nothing left: all -inf gives NaN, meaning "no contribution"
