"""Fast attention paths against the plain reference paths."""

from __future__ import annotations

import torch

from napari_smp.model.attention import (
    context_attention,
    context_attention_reference,
    memory_attention,
    memory_attention_reference,
)


def test_memory_attention_matches_reference_and_uses_only_the_routed_cluster() -> None:
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(4, 6, 5, generator=g)
    q = torch.randn(30, 5, generator=g, requires_grad=True)
    assign = torch.randint(4, (30,), generator=g)
    fast = memory_attention(q, pool, assign)
    torch.testing.assert_close(fast, memory_attention_reference(q, pool, assign))
    # changing a cluster nobody is routed to changes nothing
    unused = {0, 1, 2, 3} - set(assign[:10].tolist())
    if unused:
        other = pool.clone()
        other[unused.pop()] += 100.0
        torch.testing.assert_close(memory_attention(q[:10], other, assign[:10]), fast[:10])
    fast.sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_memory_attention_output_is_a_convex_combination_of_slots() -> None:
    pool = torch.zeros(2, 3, 2)
    pool[1] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    q = torch.tensor([[0.0, 0.0]])
    # equal logits -> uniform weights over cluster 1's three slots
    out = memory_attention(q, pool, torch.tensor([1]))
    torch.testing.assert_close(out, torch.tensor([[1 / 3, 1 / 3]]))


def test_context_attention_fused_matches_reference_unscaled() -> None:
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 50, 8, generator=g) for _ in range(3))
    fused = context_attention(q, k, v, fused=True)
    ref = context_attention_reference(q, k, v)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-4)
    scaled = torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1) @ v
    assert not torch.allclose(fused, scaled, atol=1e-3)  # no 1/sqrt(D), as in the official code


def test_context_attention_runs_on_a_fused_kernel_with_the_module_layout_and_gradients() -> None:
    """DMW-LA passes (B, HW, D) views of conv outputs (stride HW along D); the fused path must still
    reach a flash kernel (the math fallback was about 2x slower) and give the reference's gradients."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator().manual_seed(2)
    maps = [torch.randn(2, 8, 6, 6, generator=g, requires_grad=True) for _ in range(3)]
    q, k, v = (m.flatten(2).transpose(1, 2) for m in maps)  # the layout DMWLA.forward produces
    assert q.stride(-1) != 1
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # raises "No available kernel" on a math fallback
        fused = context_attention(q, k, v, fused=True)
    grads = torch.autograd.grad(fused.square().sum(), maps)
    ref = context_attention_reference(q, k, v)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-4)
    for a, b in zip(grads, torch.autograd.grad(ref.square().sum(), maps), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)

