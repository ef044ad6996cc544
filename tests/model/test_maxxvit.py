"""Tests for the in-house MaxxViT-rmlp-small backbone (timm ``maxxvit_rmlp_small_rw_256`` by name)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from napari_smp.model.maxxvit import (
    MaxxVitInputError,
    MaxxVitRmlpSmall,
    PretrainedWeightsError,
    load_pretrained,
)
from napari_smp.model.maxxvit.layers import (
    DropPath,
    PartitionAttention,
    RelPosMlp,
    WindowAttention,
    partition,
    unpartition,
)

FIXTURE = Path(__file__).parent / "fixtures" / "maxxvit_rmlp_small_rw_256.json"
# inputs of 64 give 2x2 partitions: the same parameters as the 256 model, a fraction of the compute
SMALL = 64


@pytest.fixture(scope="module")
def timm_shapes() -> dict[str, list[int]]:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def model256() -> MaxxVitRmlpSmall:
    torch.manual_seed(0)
    return MaxxVitRmlpSmall().eval()


def _features(model: MaxxVitRmlpSmall, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return model.forward_features(x)


def test_state_dict_names_and_shapes_equal_timm(model256: MaxxVitRmlpSmall, timm_shapes: dict) -> None:
    expected = {k: v for k, v in timm_shapes.items() if not k.startswith("head.")}
    ours = {k: list(v.shape) for k, v in model256.state_dict().items()}
    assert ours == expected
    # same order too, so a diff against a timm dump reads line by line
    assert list(ours) == list(expected)
    # timm keeps its index buffers out of the state dict; so must we
    assert not any("relative_position_index" in k or "rel_coords_log" in k for k in ours)


def test_parameter_count_matches_timm_published_size(model256: MaxxVitRmlpSmall, timm_shapes: dict) -> None:
    ours = sum(p.numel() for p in model256.parameters())
    head = sum(math.prod(s) for k, s in timm_shapes.items() if k.startswith("head."))
    full = sum(math.prod(s) for s in timm_shapes.values())
    assert ours == full - head == 65_241_516
    # timm's results table lists maxxvit_rmlp_small_rw_256 at 66.01 M parameters (with the 1000-class head)
    assert round(full / 1e6, 2) == 66.01


def test_forward_shapes_and_batch_independence(model256: MaxxVitRmlpSmall) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 256, 256)
    both = _features(model256, x)
    sizes = [(96, 64, 64), (192, 32, 32), (384, 16, 16), (768, 8, 8)]
    assert [tuple(f.shape) for f in both] == [(2, *s) for s in sizes]
    first = _features(model256, x[:1])
    assert [tuple(f.shape) for f in first] == [(1, *s) for s in sizes]
    for a, b in zip(first, both, strict=True):
        torch.testing.assert_close(a[0], b[0], rtol=1e-4, atol=1e-5)
    # the final LayerNorm (as in Sim-MPNet) normalises only the last output over channels
    last = both[-1]
    torch.testing.assert_close(last.mean(1), torch.zeros_like(last.mean(1)), rtol=0, atol=1e-4)
    assert abs(both[0].mean(1)).max() > 1e-2


def test_rejects_bad_input() -> None:
    model = MaxxVitRmlpSmall(img_size=SMALL)
    with pytest.raises(MaxxVitInputError, match="channels|tensor"):
        model.forward_features(torch.zeros(1, 1, SMALL, SMALL))
    with pytest.raises(MaxxVitInputError, match="multiples of 64"):
        model.forward_features(torch.zeros(1, 3, 96, 96))
    with pytest.raises(MaxxVitInputError):
        MaxxVitRmlpSmall(img_size=100)


def test_rel_pos_index_points_at_the_query_minus_key_offset() -> None:
    window = 3
    rp = RelPosMlp(window, num_heads=2, hidden=8)
    grid = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack(grid, -1).view(-1, 2)
    diff = (coords[:, None, :] - coords[None, :, :]).float()  # (9, 9, 2): query minus key
    looked_up = rp.rel_coords_log.view(-1, 2)[rp.relative_position_index].view(9, 9, 2)
    torch.testing.assert_close(looked_up, torch.sign(diff) * torch.log1p(diff.abs()))
    assert rp.get_bias().shape == (1, 2, 9, 9)


def test_partition_round_trip_and_grid_membership() -> None:
    x = torch.arange(8 * 8).float().view(1, 8, 8, 1)
    for grid in (False, True):
        groups = partition(x, 4, grid)
        assert groups.shape == (4, 4, 4, 1)
        torch.testing.assert_close(unpartition(groups, 4, grid, (8, 8)), x)
    block = partition(x, 4, grid=False)[0, ..., 0]
    torch.testing.assert_close(block, x[0, :4, :4, 0])  # a contiguous tile
    grid0 = partition(x, 4, grid=True)[0, ..., 0]
    torch.testing.assert_close(grid0, x[0, ::2, ::2, 0])  # every (8/4)-th token, spanning the image


def test_window_attention_equals_explicit_formula() -> None:
    torch.manual_seed(2)
    attn = WindowAttention(dim=64, window=2).eval()
    x = torch.randn(3, 2, 2, 64)
    q_k_v = attn.qkv(x).view(3, 4, 2, 3, 32).permute(0, 2, 1, 3, 4)  # (N, heads, tokens, [q,k,v], head_dim)
    q, k, v = q_k_v.unbind(3)
    logits = q @ k.transpose(-1, -2) / math.sqrt(32) + attn.rel_pos.get_bias()
    expected = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(3, 2, 2, 64))
    with torch.no_grad():
        torch.testing.assert_close(attn(x), expected.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grid", [False, True])
def test_attention_mixes_only_within_a_partition(grid: bool) -> None:
    torch.manual_seed(3)
    layer = PartitionAttention(dim=32, size=2, grid=grid).eval()
    with torch.no_grad():
        layer.ls1.gamma.fill_(1.0)
        x = torch.randn(1, 4, 4, 32)
        y = x.clone()
        y[0, 0, 0] += torch.randn(32)  # perturb the top-left token (not by a constant: LayerNorm removes it)
        changed = (layer(y) - layer(x)).abs().amax(-1)[0] > 1e-6
    if grid:
        same = torch.tensor([[r % 2 == 0 and c % 2 == 0 for c in range(4)] for r in range(4)])
    else:
        same = torch.tensor([[r < 2 and c < 2 for c in range(4)] for r in range(4)])
    assert torch.equal(changed, same)


def test_drop_path_zeroes_whole_samples_in_training_only() -> None:
    torch.manual_seed(4)
    dp = DropPath(0.5)
    out = dp(torch.ones(400, 3))
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert torch.all(out.amin(1) == out.amax(1))
    assert 100 < int((out[:, 0] == 0).sum()) < 300
    dp.eval()
    assert torch.equal(dp(torch.ones(4, 3)), torch.ones(4, 3))


def test_load_pretrained_safetensors_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(5)
    source = MaxxVitRmlpSmall(img_size=SMALL).eval()
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    state["head.fc.weight"] = torch.zeros(1000, 768)  # timm's classifier: must be ignored
    state["head.fc.bias"] = torch.zeros(1000)
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    torch.manual_seed(6)
    target = MaxxVitRmlpSmall(img_size=SMALL).eval()
    x = torch.randn(1, 3, SMALL, SMALL)
    before = _features(target, x)
    assert load_pretrained(target, path) == []
    after, reference = _features(target, x), _features(source, x)
    for a, r, b in zip(after, reference, before, strict=True):
        assert torch.equal(a, r)
        assert not torch.equal(a, b)


class _Payload:
    """Pickled object whose unpickling would run code: the loader must never get that far."""

    ran: list[int] = []

    def __reduce__(self) -> tuple:
        return (_Payload.ran.append, (1,))


def test_load_pretrained_refuses_pickle_but_accepts_plain_tensor_pth(tmp_path: Path) -> None:
    torch.manual_seed(7)
    source = MaxxVitRmlpSmall(img_size=SMALL)
    target = MaxxVitRmlpSmall(img_size=SMALL)
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": source.state_dict(), "extra": _Payload()}, evil)
    with pytest.raises(PretrainedWeightsError, match="safetensors"):
        load_pretrained(target, evil)
    assert _Payload.ran == []
    plain = tmp_path / "plain.pth"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, plain)  # nested, tensors and ints only
    assert load_pretrained(target, plain) == []
    assert torch.equal(target.stem.conv1.weight, source.stem.conv1.weight)
    with pytest.raises(PretrainedWeightsError, match="no weights file"):
        load_pretrained(target, tmp_path / "missing.safetensors")


def test_load_pretrained_reports_mismatches() -> None:
    torch.manual_seed(8)
    source = MaxxVitRmlpSmall(img_size=SMALL)
    target = MaxxVitRmlpSmall(img_size=SMALL)
    state = dict(source.state_dict())
    del state["stages.2.blocks.4.attn_grid.mlp.fc2.bias"]
    state["stages.0.blocks.0.conv.ls.gamma"] = torch.ones(7)
    state["stages.9.unknown"] = torch.ones(1)
    with pytest.raises(PretrainedWeightsError, match=r"2 missing.*blocks\.0\.conv\.ls\.gamma.*1 unexpected"):
        load_pretrained(target, state)
    missing = load_pretrained(target, state, strict_backbone=False)
    assert sorted(missing) == ["stages.0.blocks.0.conv.ls.gamma", "stages.2.blocks.4.attn_grid.mlp.fc2.bias"]
    key = "stages.3.blocks.1.attn_block.attn.qkv.weight"
    assert torch.equal(target.state_dict()[key], source.state_dict()[key])


def test_load_pretrained_adapts_rgb_stem_to_one_channel() -> None:
    torch.manual_seed(9)
    rgb = MaxxVitRmlpSmall(img_size=SMALL)
    grey = MaxxVitRmlpSmall(in_chans=1, img_size=SMALL)
    assert load_pretrained(grey, rgb.state_dict()) == []
    torch.testing.assert_close(grey.stem.conv1.weight, rgb.stem.conv1.weight.sum(1, keepdim=True))
    # a grey image seen through the 1-channel stem equals the same image replicated into RGB
    x = torch.rand(1, 1, SMALL, SMALL)
    with torch.no_grad():
        torch.testing.assert_close(grey.stem(x), rgb.stem(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)


def test_gradient_reaches_every_parameter() -> None:
    torch.manual_seed(10)
    model = MaxxVitRmlpSmall(img_size=SMALL, drop_path_rate=0.1).train()
    feats = model.forward_features(torch.randn(2, 3, SMALL, SMALL))
    loss = sum((f * torch.randn_like(f)).mean() for f in feats)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    zero_grad = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    assert no_grad == [] and zero_grad == []
