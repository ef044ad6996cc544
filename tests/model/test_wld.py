"""The W-LD pieces: the K rule on hand-computed sequences and the slot replacement, checked by hand."""

from __future__ import annotations

import pytest
import torch

from napari_smp.config import MemoryConfig
from napari_smp.model.wld import KController, next_k, pixel_scores, slot_scores, wld_write


@pytest.mark.parametrize(
    ("prev", "loss", "expected"),
    [
        (1.0, 0.75, 37),  # delta 0.25 -> 100 * 0.375 = 37.5 -> 37
        (1.0, 1.25, 62),  # delta -0.25 -> 62.5 -> 62
        (1.0, 0.875, 43),  # delta 0.125 -> 43.75 -> 43 (truncation)
        (1.0, 0.5, 25),  # lower bound is inside the range
        (0.5, 1.0, 75),  # upper bound is inside the range
        (2.0, 1.0, 50),  # delta 1 -> 0 < 25 -> reset to M/2
        (0.5, 1.5, 50),  # delta -1 -> 100 > 75 -> reset
        (1.0, 1.0, 50),  # no change -> M/2
    ],
)
def test_next_k_reset_policy(prev: float, loss: float, expected: int) -> None:
    assert next_k(61, prev, loss, slots=100) == expected


def test_k_controller_waits_for_two_main_phase_losses_and_the_delay() -> None:
    rule = KController.from_config(MemoryConfig(slots=100, warmup_steps=2, k_delay_steps=1, k_init=40))
    assert rule.initial_k == 40 and KController(slots=8).initial_k == 4
    # step warmup + 1 + delay = 4 is the last that keeps K; NaN is "no previous loss"
    assert rule.next(4, 40, 1.0, 0.75) == 40
    assert rule.next(5, 40, 1.0, 0.75) == 37
    assert rule.next(5, 40, float("nan"), 0.75) == 40


def test_k_controller_says_which_banks_take_k() -> None:
    shared, own = KController(slots=100), KController(slots=100, share_decoder=False)
    assert shared.sets("encoder.stage1.0") and shared.sets("decoder.stage4")
    assert own.sets("encoder.stage3.1") and not own.sets("decoder.stage4")


@pytest.mark.parametrize(("prev", "loss", "expected"), [(2.0, 1.0, 25), (0.5, 1.5, 75), (1.0, 0.75, 37)])
def test_next_k_clamp_policy(prev: float, loss: float, expected: int) -> None:
    assert next_k(50, prev, loss, slots=100, policy="clamp") == expected


def test_next_k_in_terms_of_m() -> None:
    assert next_k(20, 1.0, 0.75, slots=40) == 15  # 40 * 0.375
    assert next_k(20, 1.0, 0.25, slots=40) == 20  # 40 * 0.125 = 5 < 10 -> reset to 20
    assert next_k(20, 1.0, 0.25, slots=40, policy="clamp") == 10


def test_next_k_sequence() -> None:
    losses = [3.0, 2.75, 2.625, 2.875, 1.5, 1.5]
    k, seen = 50, []
    for prev, loss in zip(losses[:-1], losses[1:], strict=True):
        k = next_k(k, prev, loss, slots=100)
        seen.append(k)
    # deltas 0.25, 0.125, -0.25, 1.375, 0.0
    assert seen == [37, 43, 62, 50, 50]


def test_next_k_without_a_previous_loss_keeps_k() -> None:
    assert next_k(33, None, 1.0, slots=100) == 33
    assert next_k(33, 1.0, float("nan"), slots=100) == 33
    with pytest.raises(ValueError, match="policy"):
        next_k(33, 1.0, 3.0, slots=100, policy="wrap")  # type: ignore[arg-type]


def test_scores_match_their_definitions() -> None:
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(2, 5, 3, generator=g)
    u = slot_scores(pool)
    for c in range(2):
        for m in range(5):
            expected = sum(torch.softmax(pool[c, :, d], 0)[m] for d in range(3))
            assert u[c, m] == pytest.approx(float(expected), abs=1e-6)
    feats = torch.randn(7, 3, generator=g)
    assign = torch.tensor([0, 1, 0, 0, 1, 0, 1])
    v = pixel_scores(feats, assign, 2)
    for p in range(7):
        same = feats[assign == assign[p]]
        pos = int((torch.nonzero(assign == assign[p]).flatten() == p).nonzero())
        expected = sum(torch.softmax(same[:, d], 0)[pos] for d in range(3))
        assert v[p] == pytest.approx(float(expected), abs=1e-6)


def test_wld_write_replaces_exactly_k_slots_by_the_momentum_rule() -> None:
    g = torch.Generator().manual_seed(1)
    k, m, d, kk, mom = 3, 6, 4, 3, 0.3
    pool = torch.randn(k, m, d, generator=g)
    feats = torch.randn(9, d, generator=g)
    # cluster 0: 8 features, cluster 1: one feature (fewer than K), cluster 2: none
    assign = torch.tensor([0, 0, 1, 0, 0, 0, 0, 0, 0])
    before = pool.clone()
    slots, active = wld_write(pool, feats, assign, kk, mom)
    assert active.tolist() == [True, True, False]
    changed = (pool != before).any(dim=2)
    assert changed.sum(1).tolist() == [kk, kk, 0]
    u = slot_scores(before)
    v = pixel_scores(feats, assign, k)
    for c in (0, 1):
        weakest = u[c].argsort()[:kk]
        assert torch.equal(slots[c], weakest)
        members = (assign == c).nonzero().flatten()
        strongest = members[v[members].argsort(descending=True)]
        for i, slot in enumerate(weakest.tolist()):
            feat = feats[strongest[i * len(strongest[:kk]) // kk]]
            torch.testing.assert_close(pool[c, slot], (1 - mom) * before[c, slot] + mom * feat)
    assert torch.equal(pool[2], before[2])


def test_wld_write_rejects_k_out_of_range() -> None:
    with pytest.raises(ValueError, match="K must lie"):
        wld_write(torch.zeros(2, 4, 3), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long), 5, 0.3)
