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

    Queries are sorted by cluster and split, so each cluster costs one (N_c, D) x (D, M) product: a loop
    over the k clusters, never over pixels, with one host synchronisation for the split sizes. Measured
    against a loop-free alternative (one product against the whole k*M bank, then a gather) this is 7-10x
    faster on CPU at the paper's sizes, because the alternative does k times the FLOPs (docs/method.md).

    Args:
        q: queries (theta features), shape (N, D).
        pool: memory bank, shape (k, M, D); the caller passes it detached.
        assign: routed cluster of every query, shape (N,), int64.

    Returns:
        Memory residual, shape (N, D).
    """
    bank = pool.to(q.dtype)
    order = torch.argsort(assign, stable=True)
    counts = torch.bincount(assign, minlength=pool.shape[0]).tolist()
    parts = [
        torch.softmax(chunk @ bank[c].T, dim=-1) @ bank[c]
        for c, chunk in enumerate(q[order].split(counts))
        if chunk.shape[0]
    ]
    flat = torch.cat(parts) if parts else q.new_zeros((0, q.shape[1]))
    return torch.empty_like(flat).index_copy(0, order, flat)


def memory_attention_reference(q: torch.Tensor, pool: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
    """Pixel-by-pixel form of :func:`memory_attention`: gathers an (N, M, D) copy of the bank.

    Same arguments and result; only for tests and small inputs.
    """
    bank = pool.to(q.dtype)[assign]  # (N, M, D)
    weights = torch.softmax(torch.einsum("nd,nmd->nm", q, bank), dim=-1)
    return torch.einsum("nm,nmd->nd", weights, bank)


def context_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fused: bool = True) -> torch.Tensor:
    """Each pixel attends to every pixel of the same image: softmax(q k^T) v, unscaled.

    The fused path is ``F.scaled_dot_product_attention`` with ``scale=1.0``, which never holds the
    (HW, HW) matrix on kernels that support it (flash / memory-efficient, CPU included). Those kernels
    only take 4-D (B, heads, L, D) tensors with a contiguous last dimension: otherwise PyTorch
    silently falls back to the math path, which made the lite stage-1 module's forward + backward
    2x slower on CPU (docs/method.md §3.9).

    Args:
        q: theta features, shape (B, HW, D).
        k: phi features, shape (B, HW, D).
        v: g features, shape (B, HW, D).
        fused: use the fused kernel; ``False`` gives the reference path.

    Returns:
        Context residual, shape (B, HW, D).
    """
    if fused:  # one head: (B, 1, HW, D) with stride 1 along D, the layout the fused kernels accept
        q, k, v = (t.contiguous()[:, None] for t in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v, scale=1.0)[:, 0]
    return context_attention_reference(q, k, v)


def context_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Explicit form of :func:`context_attention` (same arguments and result)."""
    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
