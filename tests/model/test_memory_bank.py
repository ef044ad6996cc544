"""DMW-LA module: warm-up, k-means structuring, W-LD writes, gradients and eval freezing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_smp.model.kmeans import kmeans
from napari_smp.model.memory_bank import DMWLA


def _module(warmup: int = 2, **kw: object) -> DMWLA:
    torch.manual_seed(0)
    return DMWLA(channels=6, dim=5, clusters=3, slots=8, warmup_steps=warmup, kmeans_iters=20, seed=4, **kw)


def _x(b: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 6, 6, 6, generator=torch.Generator().manual_seed(seed))


def _finish_warmup(m: DMWLA) -> None:
    m.train()
    for i in range(m.warmup_steps):
        m(_x(seed=i))
        m.step_memory()


def test_warmup_fills_then_kmeans_partitions_the_pool() -> None:
    m = _module(warmup=3)
    m.train()
    for i in range(3):
        assert m.warming_up
        m(_x(seed=i))
        if i < 2:
            m.step_memory()
    points = m.pool.view(-1, 5)[m.filled].clone()
    assert points.shape[0] > 3  # the warm-up wrote phi features
    m.step_memory()  # reaches warmup_steps: k-means exactly once
    assert not m.warming_up
    centroids, _ = kmeans(points, 3, 20, 4)
    nearest = torch.cdist(m.pool.reshape(-1, 5), centroids).argmin(1).view(3, 8)
    assert torch.equal(nearest, torch.arange(3)[:, None].expand(3, 8))
    torch.testing.assert_close(m.prototypes, F.normalize(centroids, dim=1))
    # every slot now holds one of the sampled features (no resampling after the k-means)
    assert torch.cdist(m.pool.reshape(-1, 5), points).min(1).values.max() < 1e-5


def test_warmup_sampling_never_leaves_a_slot_unwritten_when_it_can() -> None:
    m = _module(warmup=4)
    m.train()
    for i in range(4):
        m(_x(b=4, seed=i))
        m.step_memory() if i < 3 else None
    assert bool(m.filled.all())


def test_one_wld_write_changes_exactly_k_slots_per_routed_cluster() -> None:
    m = _module()
    _finish_warmup(m)
    m.set_k(3)
    x = _x(seed=9)
    before = m.pool.clone()
    psi = F.conv2d(x, m.phi_ema).flatten(2).transpose(1, 2).reshape(-1, 5)
    assign = m.route(psi)
    m(x)
    changed = (m.pool != before).any(dim=2)
    for c in range(3):
        members = psi[assign == c]
        assert int(changed[c].sum()) == (3 if members.shape[0] else 0)
        for slot in changed[c].nonzero().flatten():
            # new = 0.7 * old + 0.3 * feature, with the feature one of those routed to c
            candidates = 0.7 * before[c, slot] + 0.3 * members
            assert (candidates - m.pool[c, slot]).abs().amax(1).min() < 1e-5
    torch.testing.assert_close(m.prototypes, m.pool.mean(1))


def test_bank_gets_no_gradient_but_projections_do() -> None:
    m = _module()
    _finish_warmup(m)
    names = {n for n, _ in m.named_parameters()}
    assert names == {"theta.weight", "phi.weight", "g.weight", "o.weight"}
    for buf in ("pool", "prototypes", "phi_ema"):
        assert not getattr(m, buf).requires_grad
    m(_x(seed=5)).square().sum().backward()
    for p in m.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert m.pool.grad is None and m.phi_ema.grad is None


def test_eval_forward_changes_no_buffer_and_is_per_image() -> None:
    m = _module()
    _finish_warmup(m)
    m.eval()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    a, b = _x(b=1, seed=1), _x(b=1, seed=2)
    both = m(torch.cat([a, b]))
    swapped = m(torch.cat([b, a]))
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k
    torch.testing.assert_close(both[1:], m(b), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(swapped[:1], both[1:], atol=1e-5, rtol=1e-5)


def test_faithful_eval_updates_write_in_eval() -> None:
    m = _module(eval_updates=True)
    _finish_warmup(m)
    m.eval()
    before = m.pool.clone()
    m(_x(seed=3))
    assert not torch.equal(before, m.pool)


def test_step_counts_optimiser_steps_and_moves_phi_copy() -> None:
    m = _module(warmup=5)
    m.train()
    for _ in range(3):
        m(_x())  # forwards alone do not advance the warm-up
    assert int(m.step) == 0
    with torch.no_grad():
        m.phi.weight.add_(1.0)
    old = m.phi_ema.clone()
    m.step_memory()
    torch.testing.assert_close(m.phi_ema, 0.95 * old + 0.05 * m.phi.weight)
    assert int(m.step) == 1


def test_fused_and_reference_context_agree_in_the_module() -> None:
    m = _module()
    _finish_warmup(m)
    m.eval()
    x = _x(seed=7)
    fused = m(x)
    m.fused_attn = False
    torch.testing.assert_close(m(x), fused, atol=1e-5, rtol=1e-5)


def test_rejects_zero_warmup_and_bad_k() -> None:
    with pytest.raises(ValueError, match="warmup_steps"):
        DMWLA(4, 4, 2, warmup_steps=0)
    with pytest.raises(ValueError, match="K must lie"):
        _module().set_k(9)


def test_tied_writes_keep_class_features_in_their_class_block():
    """With tied_writes, a main-phase write puts cells labelled c into block c, whatever the routing says."""
    import torch

    from napari_smp.model.memory_bank import DMWLA

    def module(tied: bool) -> DMWLA:
        torch.manual_seed(0)
        m = DMWLA(4, 4, clusters=2, slots=4, warmup_steps=1, seed_from_labels=True, tied_writes=tied)
        m.step.fill_(1)  # past the warm-up
        with torch.no_grad():
            m.phi_ema.copy_(torch.eye(4)[:, :, None, None])  # phi copy = identity: features = input
            m.pool.fill_(0.0)
            m.prototypes.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        return m

    x = torch.zeros(1, 4, 2, 2)
    x[:, 0] = 1.0  # every cell points at prototype 0
    labels = torch.ones(1, 8, 8, dtype=torch.long)  # but is labelled class 1
    for tied, written in ((True, 1), (False, 0)):
        m = module(tied).train()
        assert m.reads_labels == tied  # a tied bank reads labels after its warm-up too
        m.targets = labels
        m(x)
        changed = m.pool.abs().sum(dim=(1, 2)) > 0
        assert changed.tolist() == [written == 0, written == 1], tied
    # cells without a majority class are not written
    m = module(True).train()
    quarter = torch.zeros(1, 8, 8, dtype=torch.long)
    quarter[:, ::2, ::2] = 1  # a quarter class 1: class 0 holds the majority
    m.targets = quarter
    m(x)
    assert (m.pool[0].abs().sum() > 0) and float(m.pool[1].abs().sum()) == 0.0
