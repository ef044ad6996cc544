"""DS-GIM: intended behaviour, the faithful reproduction of the official bugs, and the helpers."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from napari_smp.model.dsgim import DSGIM, decay_coefficients, window_self_similarity


def _pair(channels: int = 8) -> tuple[DSGIM, DSGIM]:
    torch.manual_seed(0)
    intended = DSGIM(channels).eval()
    faithful = DSGIM(channels, faithful=True).eval()
    faithful.load_state_dict(intended.state_dict())
    return intended, faithful


def _x(b: int, c: int = 8, h: int = 6, w: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_decay_coefficients_match_the_official_schedule() -> None:
    got = decay_coefficients(12)
    expected = [0.929, 0.889, 0.860, 0.839, 0.823, 0.812, 0.804, 0.797, 0.793, 0.789, 0.787, 0.785]
    assert got == pytest.approx(expected, abs=6e-4)


def test_window_self_similarity_equals_the_pairwise_sum() -> None:
    x = _x(2, c=3, h=4, w=6)
    got = window_self_similarity(x)
    for b, (r, c) in itertools.product(range(2), [(0, 0), (0, 1), (1, 0), (1, 1)]):
        tokens = x[b, :, 2 * r : 2 * r + 2, 3 * c : 3 * c + 3].reshape(3, -1).T
        cos = F.cosine_similarity(tokens[:, None], tokens[None], dim=-1)
        assert float(got[b, 2 * r + c]) == pytest.approx(float(torch.triu(cos).sum()), abs=1e-4)


def test_intended_masks_damp_the_two_most_self_similar_windows() -> None:
    intended, _ = _pair(4)
    x = _x(1, c=4, h=4, w=4)
    x[:, :, :2, :2] = 1.0  # top-left: all tokens equal -> maximal self-similarity
    x[:, :, 2:, 2:] = -2.0  # bottom-right likewise
    mask_q, mask_k = intended._window_masks(x, 0.8)
    expected_q = torch.ones(4, 4)
    expected_q[:2, :2] = expected_q[2:, 2:] = 0.8
    torch.testing.assert_close(mask_q[0, 0], expected_q)
    torch.testing.assert_close(mask_k[0, 0], 1.8 - expected_q)


def test_faithful_batch_one_degenerates_to_global_average() -> None:
    _, faithful = _pair()
    x = _x(1)
    out = faithful(x, decay_coefficients(12)[1])
    # element 0 has all-zero masks: Q, K are their biases, both softmaxes uniform, Z = 2 * mean(V)
    v = faithful.v(x).flatten(2).mean(2)  # (1, C)
    z = faithful.fc(2 * v)[:, :, None, None].expand(1, 8, 6, 6)
    torch.testing.assert_close(out, faithful.conv(z.contiguous()), atol=1e-5, rtol=1e-5)


def test_faithful_degenerates_only_batch_element_zero() -> None:
    _, faithful = _pair()
    a, b = _x(1, seed=1), _x(1, seed=2)
    batch = faithful(torch.cat([a, b]), 0.889)
    torch.testing.assert_close(batch[:1], faithful(a, 0.889), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batch[1:], faithful(b, 0.889), atol=1e-3)  # b depends on its place


def test_intended_is_per_sample_and_differs_from_faithful() -> None:
    intended, faithful = _pair()
    a, b = _x(1, seed=1), _x(1, seed=2)
    batch = intended(torch.cat([a, b]), 0.889)
    torch.testing.assert_close(batch[1:], intended(b, 0.889), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch[:1], intended(a, 0.889), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batch, faithful(torch.cat([a, b]), 0.889), atol=1e-3)
    # the decay coefficient reaches the computation
    assert not torch.allclose(intended(a, 0.889), intended(a, 0.5), atol=1e-4)


def test_any_even_size_and_odd_size_refused() -> None:
    intended, _ = _pair(5)
    out = intended(_x(2, c=5, h=6, w=10), 0.9)
    assert out.shape == (2, 5, 6, 10)
    out.sum().backward()
    assert intended.q.weight.grad is not None
    with pytest.raises(ValueError, match="even"):
        intended(_x(1, c=5, h=5, w=6), 0.9)
