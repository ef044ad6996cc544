"""The two attention reads of DMW-LA, each with a fast path and a plain reference path.

Both follow the official code exactly: logits are *unscaled* dot products (no 1/sqrt(D)), and the
memory read and the context read are two separate softmaxes whose results are summed by the caller.
The reference paths spell the math out and exist so that tests can hold the fast paths to them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "memory_attention",
    "memory_attention_reference",
    "context_attention",
    "context_attention_reference",
]


def memory_attention(q: torch.Tensor, pool: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
    """Every query attends to the M slots of the cluster it was routed to; slots are keys and values.

    One matrix product against the whole bank, then a gather of the routed cluster's M logits, so no
    Python loop over clusters and no per-pixel copy of the bank (which would be N x M x D). The price
    is k times the FLOPs of the routed product, small next to the context read (measured in
    docs/method.md).

    Args:
        q: queries (theta features), shape (N, D).
        pool: memory bank, shape (k, M, D); the caller passes it detached.
        assign: routed cluster of every query, shape (N,), int64.

    Returns:
        Memory residual, shape (N, D).
    """
    k, m, d = pool.shape
    flat = pool.reshape(k * m, d).to(q.dtype)
    logits = (q @ flat.T).view(-1, k, m)
    index = assign.view(-1, 1, 1).expand(-1, 1, m)
    weights = logits.gather(1, index).softmax(dim=-1)  # (N, 1, M)
    dense = torch.zeros_like(logits).scatter(1, index, weights)
    return dense.view(-1, k * m) @ flat


def memory_attention_reference(q: torch.Tensor, pool: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
    """Cluster-by-cluster form of :func:`memory_attention` (same arguments and result)."""
    out = q.new_zeros(q.shape)
    for c in range(pool.shape[0]):
        sel = assign == c
        bank = pool[c].to(q.dtype)  # (M, D)
        out[sel] = torch.softmax(q[sel] @ bank.T, dim=-1) @ bank
    return out


def context_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fused: bool = True
) -> torch.Tensor:
    """Each pixel attends to every pixel of the same image: softmax(q k^T) v, unscaled.

    The fused path is ``F.scaled_dot_product_attention`` with ``scale=1.0``, which never holds the
    (HW, HW) matrix on kernels that support it (flash / memory-efficient, CPU included).

    Args:
        q: theta features, shape (B, HW, D).
        k: phi features, shape (B, HW, D).
        v: g features, shape (B, HW, D).
        fused: use the fused kernel; ``False`` gives the reference path.

    Returns:
        Context residual, shape (B, HW, D).
    """
    if fused:
        return F.scaled_dot_product_attention(q, k, v, scale=1.0)
    return context_attention_reference(q, k, v)


def context_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Explicit form of :func:`context_attention` (same arguments and result)."""
    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
