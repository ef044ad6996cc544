import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from napari_smp.engine.training.losses import deep_supervision_loss, head_subsets, soft_dice_loss


def test_head_subsets_are_the_15_non_empty_subsets():
    subsets = head_subsets(4)
    assert len(subsets) == 15 and len(set(subsets)) == 15
    assert (0, 1, 2, 3) in subsets and all(len(s) >= 1 for s in subsets)


def test_soft_dice_hand_computed():
    # two pixels, two classes; probabilities p0 = (0.5, 1 - s), targets (0, 1)
    logits = torch.tensor([[[[0.0, 2.0]], [[0.0, 0.0]]]])  # (B=1, C=2, H=1, W=2)
    target = torch.tensor([[[0, 1]]])
    p = logits.softmax(1)
    eps = 1e-5
    expected = []
    for c in range(2):
        g = (target == c).float()
        inter = (p[:, c] * g).sum()
        expected.append(1 - (2 * inter + eps) / ((p[:, c] ** 2).sum() + (g**2).sum() + eps))
    assert soft_dice_loss(logits, target).item() == pytest.approx(
        torch.stack(expected).mean().item(), rel=1e-6
    )


def test_perfect_prediction_has_near_zero_dice_and_small_ce():
    target = torch.randint(0, 3, (2, 8, 8))
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(logits, target).item() < 1e-4


def test_deep_supervision_sums_every_subset():
    torch.manual_seed(0)
    heads = [torch.randn(2, 3, 8, 8) for _ in range(4)]
    target = torch.randint(0, 3, (2, 8, 8))
    expected = 0.0
    for r in range(1, 5):
        for s in itertools.combinations(range(4), r):
            logit = sum(heads[i] for i in s)
            expected += (
                0.3 * F.cross_entropy(logit, target).item() + 0.7 * soft_dice_loss(logit, target).item()
            )
    assert deep_supervision_loss(heads, target).item() == pytest.approx(expected, rel=1e-5)


def test_loss_backpropagates_to_every_head():
    heads = [torch.randn(1, 2, 4, 4, requires_grad=True) for _ in range(4)]
    deep_supervision_loss(heads, torch.randint(0, 2, (1, 4, 4))).backward()
    assert all(h.grad is not None and h.grad.abs().sum() > 0 for h in heads)


def test_heads_mode_supervises_each_head_and_their_sum():
    from napari_smp.engine.training.losses import supervised_sums

    assert supervised_sums(5, "heads") == [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)]
    assert len(supervised_sums(5, "subsets")) == 31
    torch.manual_seed(1)
    heads = [torch.randn(2, 3, 8, 8, requires_grad=True) for _ in range(5)]
    target = torch.randint(0, 3, (2, 8, 8))

    def term(logit):
        return 0.3 * F.cross_entropy(logit, target) + 0.7 * soft_dice_loss(logit, target)

    expected = sum(term(h) for h in heads) + term(sum(heads))
    loss = deep_supervision_loss(heads, target, mode="heads")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert all(h.grad is not None and h.grad.abs().sum() > 0 for h in heads)
    with pytest.raises(ValueError, match="deep-supervision mode"):
        deep_supervision_loss(heads, target, mode="pairs")


def test_auxiliary_mode_halves_the_weight_of_each_coarser_head():
    from napari_smp.engine.training.losses import subset_weight, supervised_sums

    assert supervised_sums(5, "auxiliary") == [(0,), (1,), (2,), (3,), (4,)]
    assert [subset_weight((i,), 5, "auxiliary") for i in range(5)] == [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]
    assert subset_weight((0, 1), 5, "heads") == 1.0
    torch.manual_seed(2)
    heads = [torch.randn(2, 3, 8, 8, requires_grad=True) for _ in range(5)]
    target = torch.randint(0, 3, (2, 8, 8))

    def term(logit):
        return 0.3 * F.cross_entropy(logit, target) + 0.7 * soft_dice_loss(logit, target)

    expected = sum(2.0 ** (i - 4) * term(h) for i, h in enumerate(heads))
    loss = deep_supervision_loss(heads, target, mode="auxiliary")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    # the same logits in the deepest and the finest head: the finest gets 16 times the gradient
    same = torch.randn(1, 3, 4, 4)
    pair = [same.clone().requires_grad_() for _ in range(5)]
    deep_supervision_loss(pair, torch.randint(0, 3, (1, 4, 4)), mode="auxiliary").backward()
    torch.testing.assert_close(pair[4].grad, 16 * pair[0].grad)
    # one head (a network with a single output): the plain CE + Dice of it
    one = deep_supervision_loss(heads[-1:], target, mode="auxiliary")
    assert one.item() == pytest.approx(term(heads[-1]).item(), rel=1e-5)


def test_one_hot_fractions_give_the_index_loss_exactly():
    torch.manual_seed(2)
    heads = [torch.randn(2, 4, 8, 8) for _ in range(5)]
    target = torch.randint(0, 4, (2, 8, 8))
    onehot = F.one_hot(target, 4).permute(0, 3, 1, 2).float()
    for mode in ("heads", "subsets"):
        hard = deep_supervision_loss(heads, target, mode=mode).item()
        assert deep_supervision_loss(heads, onehot, mode=mode).item() == pytest.approx(hard, rel=1e-6)


def test_soft_target_loss_is_the_cross_entropy_against_the_fractions():
    # one pixel, two classes, target (0.25, 0.75): CE = -(0.25 log p0 + 0.75 log p1), and the loss is
    # smallest where the prediction equals the fractions, not at the hard answer
    target = torch.tensor([0.25, 0.75]).view(1, 2, 1, 1)

    def loss(p1: float, dice: float = 0.0) -> float:
        logits = torch.log(torch.tensor([1 - p1, p1])).view(1, 2, 1, 1)
        return deep_supervision_loss([logits], target, ce_weight=1.0, dice_weight=dice).item()

    assert loss(0.6) == pytest.approx(-(0.25 * math.log(0.4) + 0.75 * math.log(0.6)), rel=1e-5)
    assert loss(0.75) < loss(0.6) and loss(0.75) < loss(0.9) and loss(0.75) < loss(0.999)
    # the Dice term: with the prediction equal to the fractions, 2 sum(p g) = sum(p^2) + sum(g^2)
    assert loss(0.75, dice=1.0) - loss(0.75) == pytest.approx(0.0, abs=1e-4)


def test_a_coarse_head_is_supervised_against_the_class_fractions_of_its_cells():
    # a 4 x 4 target, one 2 x 2 head: each head cell covers 4 target pixels; a cell with 3 pixels of
    # class 1 and 1 of class 0 has the fractions (0.25, 0.75), known by hand
    target = torch.tensor([[[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]])
    fractions = torch.tensor([[[0.25, 1.0], [0.0, 0.0]], [[0.75, 0.0], [1.0, 1.0]]])[None]  # (1, 2, 2, 2)
    coarse = torch.randn(1, 2, 2, 2, requires_grad=True)
    finest = torch.randn(1, 2, 4, 4, requires_grad=True)
    logp = coarse.log_softmax(1)
    p = logp.exp()
    ce = -(fractions * logp).sum(1).mean()
    dice = (1 - (2 * (p * fractions).sum((0, 2, 3)) + 1e-5)
            / (p.square().sum((0, 2, 3)) + fractions.square().sum((0, 2, 3)) + 1e-5)).mean()
    fine_term = 0.3 * F.cross_entropy(finest, target) + 0.7 * soft_dice_loss(finest, target)
    expected = 0.5 * (0.3 * ce + 0.7 * dice) + fine_term
    onehot = F.one_hot(target, 2).permute(0, 3, 1, 2).float()
    for tgt in (target, onehot):  # class indices and one-hot fractions pool alike
        loss = deep_supervision_loss([coarse, finest], tgt, mode="auxiliary")
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert coarse.grad is not None and coarse.grad.abs().sum() > 0


def test_a_coarse_head_in_a_sum_is_upsampled_first():
    torch.manual_seed(3)
    coarse, finest = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    up = F.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False)
    lone = deep_supervision_loss([coarse], target).item() - deep_supervision_loss([up], target).item()
    for mode in ("heads", "subsets"):
        # only the lone coarse head's term differs (pooled targets); every sum and the finest match
        mixed = deep_supervision_loss([coarse, finest], target, mode=mode).item()
        sized = deep_supervision_loss([up, finest], target, mode=mode).item()
        assert mixed - sized == pytest.approx(lone, rel=1e-5)


# ---- unknown pixels (scribbles) never enter the loss


def _known_only_loss(logits: torch.Tensor, target: torch.Tensor) -> float:
    """0.3 CE + 0.7 soft Dice by hand over the known pixels (target >= 0) of one head."""
    keep = target >= 0
    p = logits.softmax(1)
    ce = F.cross_entropy(logits, target, ignore_index=-1)
    eps, terms = 1e-5, []
    for c in range(logits.shape[1]):
        g = ((target == c) & keep).float()
        pc = p[:, c] * keep
        terms.append(1 - (2 * (pc * g).sum() + eps) / ((pc**2).sum() + g.sum() + eps))
    return (0.3 * ce + 0.7 * torch.stack(terms).mean()).item()


def test_unknown_pixels_are_left_out_of_ce_and_dice_known_answer():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 6, 6)
    target = torch.randint(0, 3, (2, 6, 6))
    target[0, :3] = -1  # half of the first image is not annotated
    target[1, 2, 2] = -1
    got = deep_supervision_loss([logits], target, mode="heads").item()
    assert got == pytest.approx(_known_only_loss(logits, target), rel=1e-5)
    # and it differs from reading those pixels as background (the whole-slice meaning)
    assert got != pytest.approx(deep_supervision_loss([logits], target.clamp(min=0), mode="heads").item(), rel=1e-3)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("mode", ["subsets", "heads", "auxiliary"])
def test_a_pixel_marked_unknown_changes_nothing_in_the_loss_or_its_gradient(soft: bool, mode: str):
    torch.manual_seed(2)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :, :3] = -1  # a band nobody annotated
    if soft:  # fractions: an unknown pixel has no class (its fractions sum to 0)
        target_in = F.one_hot(target.clamp(min=0), 3).permute(0, 3, 1, 2).float() * (target >= 0)[:, None]
    else:
        target_in = target
    # the coarse heads (auxiliary) see whole 2x2 cells, so the change is kept to cells wholly unknown
    base = [torch.randn(2, 3, 8, 8) for _ in range(4)]
    if mode == "auxiliary":
        base = [torch.randn(2, 3, 8 >> (3 - i), 8 >> (3 - i)) for i in range(4)]

    def loss_and_grads(heads: list[torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        heads = [h.clone().requires_grad_(True) for h in heads]
        loss = deep_supervision_loss(heads, target_in, mode=mode)
        loss.backward()
        return loss.item(), [h.grad for h in heads]

    loss0, grads0 = loss_and_grads(base)
    changed = [h.clone() for h in base]
    changed[-1][:, :, :, :2] += 5.0 * torch.randn_like(changed[-1][:, :, :, :2])  # finest head, unknown cols 0-1
    loss1, grads1 = loss_and_grads(changed)
    assert loss1 == pytest.approx(loss0, rel=1e-6, abs=1e-7)
    assert grads0[-1][:, :, :, :2].abs().max().item() == 0.0  # nothing flows into unknown pixels
    for g0, g1 in zip(grads0, grads1, strict=True):  # and every other gradient is as it was
        torch.testing.assert_close(g0, g1, rtol=1e-5, atol=1e-7)


def test_unknown_fractions_give_the_ignore_index_loss():
    torch.manual_seed(3)
    heads = [torch.randn(2, 3, 8, 8) for _ in range(4)]
    target = torch.randint(0, 3, (2, 8, 8))
    target[1, 4:] = -1
    fractions = F.one_hot(target.clamp(min=0), 3).permute(0, 3, 1, 2).float() * (target >= 0)[:, None]
    assert deep_supervision_loss(heads, fractions).item() == pytest.approx(
        deep_supervision_loss(heads, target).item(), rel=1e-5
    )


def test_a_batch_with_no_known_pixel_gives_a_finite_zero_ce():
    heads = [torch.randn(1, 2, 4, 4, requires_grad=True)]
    loss = deep_supervision_loss(heads, torch.full((1, 4, 4), -1), mode="heads")
    assert torch.isfinite(loss)
    loss.backward()
    assert heads[0].grad.abs().max().item() == 0.0


def test_a_coarse_head_over_partly_known_cells_scores_zero_for_a_sure_right_answer():
    # one known pixel in every 2 x 2 cell: the 8 x 8 head sees cells a quarter known; a sure answer of
    # the known pixel's class is perfect there (Dice term 0, CE ~0), never better than perfect (< 0)
    torch.manual_seed(5)
    classes = torch.randint(0, 3, (2, 8, 8))
    target = torch.full((2, 16, 16), -1)
    target[:, ::2, ::2] = classes
    head = F.one_hot(classes, 3).permute(0, 3, 1, 2).float() * 30
    fractions = F.one_hot(target.clamp(min=0), 3).permute(0, 3, 1, 2).float() * (target >= 0)[:, None]
    for t in (target, fractions):
        assert deep_supervision_loss([head], t, mode="auxiliary").item() == pytest.approx(0.0, abs=1e-4)
    wrong = head.roll(1, dims=1)  # sure and wrong everywhere: a large loss
    assert deep_supervision_loss([wrong], target, mode="auxiliary").item() > 1.0
