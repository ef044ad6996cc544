"""SimMPNet: shapes, the memory_step contract, eval freezing, determinism and cluster maps."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from napari_smp.config import MemoryConfig, ModelConfig
from napari_smp.model import ClusterReadout, ModelInputError, SimMPNet, build_model


def _config(**memory: object) -> ModelConfig:
    mem = {"slots": 8, "warmup_steps": 2, "kmeans_iters": 10} | memory
    return ModelConfig(
        preset="lite", num_classes=3, in_channels=1, img_size=64, lite_width=8, memory=MemoryConfig(**mem),
        lite_memory_stages=(1, 2, 3, 4),  # every module kind at every stage (the default has stages 3-4)
        slice_context=0,  # one slice: the network itself (2.5D input: tests/engine/test_slice_context.py)
        use_memory=True,  # the bank under test (lite's default is without it)
    )


def _model(seed: int = 0, **memory: object) -> SimMPNet:
    torch.manual_seed(seed)
    return build_model(_config(**memory))


def _x(b: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 1, 64, 64, generator=torch.Generator().manual_seed(seed))


def _train(model: SimMPNet, steps: int, batch: int = 2) -> list[dict[str, object]]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    reports = []
    for i in range(steps):
        loss = sum(o.square().mean() for o in model(_x(batch, seed=i)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        reports.append(model.memory_step(loss.item()))
    return reports


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_lite_outputs_five_logit_maps_at_input_size(batch: int) -> None:
    model = _model()
    model.config = replace(model.config, lite_prediction="sum")  # every head is then an answer
    out = model.train()(_x(batch))
    assert isinstance(out, tuple) and len(out) == 5  # four decoder stages (1/32..1/4), one at 1/1
    assert all(o.shape == (batch, 3, 64, 64) for o in out)


@pytest.mark.parametrize("batch", [1, 3])
def test_auxiliary_heads_train_at_their_own_scale_and_equal_the_upsampled_sum_heads(batch: int) -> None:
    model = _model()  # lite_prediction "finest", the default: the coarser heads are auxiliaries
    x = _x(batch)
    with torch.no_grad():
        native = model.train()(x)
        model.config = replace(model.config, lite_prediction="sum")
        upsampled = model(x)  # the same weights, the same batch statistics
    assert [o.shape[-1] for o in native] == [2, 4, 8, 16, 64]  # 1/32 .. 1/4, then the answer at 1/1
    assert all(o.shape[:2] == (batch, 3) for o in native)
    for coarse, full in zip(native, upsampled, strict=True):
        torch.testing.assert_close(
            torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False), full
        )


def test_finest_prediction_is_the_last_training_head_and_the_sum_keeps_every_head() -> None:
    torch.manual_seed(4)
    finest = build_model(_config())
    torch.manual_seed(4)
    summed = build_model(replace(_config(), lite_prediction="sum"))
    assert finest.config.lite_prediction == "finest"  # the lite default
    x = _x(2, seed=5)
    with torch.no_grad():
        train_heads = finest.train()(x)
        assert len(train_heads) == 5  # the coarser heads are trained as auxiliaries
        finest.eval()
        summed.load_state_dict(finest.state_dict())  # the field changes no parameter, only the answer
        only = finest(x)
        every = summed.eval()(x)
    assert len(only) == 1 and len(every) == 5
    torch.testing.assert_close(only[0], every[-1], rtol=0, atol=0)
    assert not torch.allclose(sum(every), every[-1])  # the sum is another answer
    with pytest.raises(ValueError, match="lite_prediction"):
        replace(_config(), lite_prediction="mean")


def test_a_config_from_before_lite_prediction_predicts_the_sum() -> None:
    old = _config().to_dict()
    del old["lite_prediction"]  # checkpoints written before the field summed every head
    config = ModelConfig.from_dict(old)
    assert config.lite_prediction == "sum"
    assert len(build_model(config).eval()(_x(1))) == 5
    assert ModelConfig.from_dict(_config().to_dict()).lite_prediction == "finest"


def test_a_config_from_before_the_full_resolution_decoder_rebuilds_its_network() -> None:
    old = _config().to_dict()
    del old["lite_full_res"], old["lite_prediction"]  # what checkpoints written before the fields hold
    config = ModelConfig.from_dict(old)
    assert config.lite_full_res is False
    model = build_model(config).eval()
    assert model.fine_encoder is None and len(model(_x(1))) == 4
    assert ModelConfig.from_dict(_config().to_dict()).lite_full_res is True


def test_the_fine_path_leaves_the_rest_of_the_initialisation_unchanged() -> None:
    torch.manual_seed(3)
    quarter = build_model(replace(_config(), lite_full_res=False))
    after_quarter = torch.rand(3)
    torch.manual_seed(3)
    full = build_model(_config())
    assert torch.equal(torch.rand(3), after_quarter)
    shared = quarter.state_dict()
    for name, value in full.state_dict().items():
        if not name.startswith(("fine_", "heads.4")):
            torch.testing.assert_close(value, shared[name], rtol=0, atol=0, equal_nan=True, msg=name)


def test_wrong_input_size_is_a_clear_error() -> None:
    model = _model()
    with pytest.raises(ModelInputError, match="resize slices to 64x64"):
        model(torch.zeros(1, 1, 48, 64))
    with pytest.raises(ModelInputError, match=r"\(B, 1, 64, 64\)"):
        model(torch.zeros(1, 3, 64, 64))
    for preset in ("lite", "paper"):  # refused when the config is made, before any model is built
        with pytest.raises(ValueError, match="img_size must be a positive multiple of 32, got 80"):
            ModelConfig(preset=preset, img_size=80)


def test_memory_modules_have_stable_names_and_lite_dims() -> None:
    names = [n for n, _ in _model().memory_modules()]
    assert names == [
        "encoder.stage1.0",
        "encoder.stage2.0",
        "encoder.stage3.0",
        "encoder.stage3.1",
        "encoder.stage4.0",
        "decoder.stage4",
        "decoder.stage3",
        "decoder.stage2",
        "decoder.stage1",
    ]
    dims = {n: m.dim for n, m in _model().memory_modules()}
    assert dims["encoder.stage1.0"] == 8 and dims["encoder.stage4.0"] == 64 and dims["decoder.stage4"] == 64


def test_memory_step_contract_and_k_rule_with_delay() -> None:
    model = _model(slots=100, warmup_steps=2, k_delay_steps=1)
    losses = [5.0, 4.0, 3.0, 2.75, 2.875, 0.5]
    reports = [model.memory_step(loss) for loss in losses]
    assert [r["step"] for r in reports] == [1, 2, 3, 4, 5, 6]
    assert [r["warming_up"] for r in reports] == [True, False, False, False, False, False]
    # K follows the loss from step warmup + 1 + delay + 1 = 5 on: deltas -0.125 -> 56, 2.375 -> reset 50
    assert [r["k"] for r in reports] == [50, 50, 50, 50, 56, 50]
    assert model.k == 50


def test_k_rule_applies_to_every_bank_and_decoder_flag() -> None:
    model = _model(slots=100, warmup_steps=1)
    for loss in (3.0, 2.0, 1.75):
        model.memory_step(loss)
    assert model.k == 37
    assert {int(m.k_update) for _, m in model.memory_modules()} == {37}
    model = _model(slots=100, warmup_steps=1, share_decoder_k=False)
    for loss in (3.0, 2.0, 2.25):
        model.memory_step(loss)
    ks = {n: int(m.k_update) for n, m in model.memory_modules()}
    assert model.k == 62
    assert all(k == 62 for n, k in ks.items() if n.startswith("encoder"))
    assert all(k == 50 for n, k in ks.items() if n.startswith("decoder"))


def test_bank_gets_no_gradient_after_warmup() -> None:
    model = _model()
    _train(model, 3)
    assert not any(m.warming_up for _, m in model.memory_modules())
    param_ids = {id(p) for p in model.parameters()}
    model.zero_grad()
    sum(o.sum() for o in model(_x(2, seed=9))).backward()
    for _, m in model.memory_modules():
        assert all(id(getattr(m, b)) not in param_ids for b in ("pool", "prototypes", "phi_ema"))
        assert m.pool.grad is None
        for p in (m.theta.weight, m.phi.weight, m.g.weight, m.o.weight):
            assert p.grad is not None and p.grad.abs().sum() > 0


def test_eval_changes_no_buffer_and_is_independent_of_batch() -> None:
    model = _model()
    _train(model, 3)
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    a, b = _x(1, seed=20), _x(1, seed=21)
    with torch.no_grad():
        ab = sum(model(torch.cat([a, b])))
        ba = sum(model(torch.cat([b, a])))
        only_b = sum(model(b))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    torch.testing.assert_close(ab[1:], only_b, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ba[:1], only_b, atol=1e-4, rtol=1e-4)


def test_faithful_eval_updates_flag() -> None:
    torch.manual_seed(0)
    cfg = _config()
    cfg.faithful_eval_updates = True
    model = build_model(cfg)
    _train(model, 3)
    model.eval()
    pools = [m.pool.clone() for _, m in model.memory_modules()]
    with torch.no_grad():
        model(_x(1, seed=30))
    assert any(not torch.equal(p, m.pool) for p, (_, m) in zip(pools, model.memory_modules(), strict=True))


def test_fixed_seed_gives_identical_training() -> None:
    runs = []
    for _ in range(2):
        model = _model(seed=5)
        reports = _train(model, 4)
        runs.append((reports, model.state_dict()))
    assert runs[0][0] == runs[1][0]
    for k, v in runs[0][1].items():
        assert torch.equal(v, runs[1][1][k]), k
    other = _model(seed=6)
    _train(other, 4)
    assert not torch.equal(other.state_dict()["heads.0.weight"], runs[0][1]["heads.0.weight"])


def test_cluster_maps() -> None:
    model = _model()
    _train(model, 3)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    maps = ClusterReadout(model).maps(_x(2, seed=3), "encoder.stage3.1")
    assert model.training  # mode restored
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert maps["assignment"].shape == (2, 4, 4) and maps["assignment"].dtype == torch.long
    assert maps["similarity"].shape == (2, 3, 4, 4)
    assert maps["stride"] == 16.0 and maps["warming_up"] is False
    assert torch.equal(maps["assignment"], maps["similarity"].argmax(1))
    assert maps["similarity"].abs().max() <= 1.0 + 1e-5
    dec = ClusterReadout(model).maps(_x(1), "decoder.stage1")
    assert dec["similarity"].shape == (1, 3, 16, 16) and dec["stride"] == 4.0
    with pytest.raises(ValueError, match="no DMW-LA module named"):
        ClusterReadout(model).maps(_x(1), "encoder.stage9.0")
    plain = build_model(replace(_config(), use_memory=False))
    with pytest.raises(ValueError, match="trained without its memory bank: it has no clusters to show"):
        ClusterReadout(plain).maps(_x(1), "decoder.stage1")


def test_paper_preset_parameter_count() -> None:
    pytest.importorskip("napari_smp.model.maxxvit")
    model = build_model(ModelConfig(preset="paper", num_classes=9))
    count = sum(p.numel() for p in model.parameters())
    assert abs(count / 91.30e6 - 1) < 0.03, count
    assert len(model.memory_modules()) == 16


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 2])
def test_paper_preset_forward_shapes(batch: int) -> None:
    pytest.importorskip("napari_smp.model.maxxvit")
    model = build_model(ModelConfig(preset="paper", num_classes=4, in_channels=1)).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 1, 256, 256))
    assert len(out) == 4 and all(o.shape == (batch, 4, 256, 256) for o in out)


def test_use_memory_off_is_the_plain_network():
    from napari_smp.config import MemoryConfig, ModelConfig
    from napari_smp.model import build_model

    cfg = dict(preset="lite", num_classes=3, img_size=32, lite_width=8, lite_depths=(1, 1, 1, 1), slice_context=0,
               lite_memory_stages=(1, 2, 3, 4),
               memory=MemoryConfig(slots=8, dim=16, decoder_dim=16, warmup_steps=2))
    with_mem = build_model(ModelConfig(**cfg, use_memory=True))
    plain = build_model(ModelConfig(**cfg, use_memory=False))
    assert plain.memory_modules() == [] and len(with_mem.memory_modules()) == 8
    assert not any("pool" in name for name, _ in plain.named_buffers())
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_plain < sum(p.numel() for p in with_mem.parameters())
    outs = plain.train()(torch.rand(2, 1, 32, 32))  # the 1/32 auxiliary head at its own scale, the answer at 1/1
    assert len(outs) == 5 and outs[0].shape == (2, 3, 1, 1) and outs[-1].shape == (2, 3, 32, 32)
    assert plain.memory_step(1.0)["warming_up"] is False


def test_memory_stages_put_dmwla_only_where_asked() -> None:
    config = replace(_config(), lite_memory_stages=(3, 4))
    model = build_model(config)
    names = [name for name, _ in model.memory_modules()]
    assert names and all(n.startswith(("encoder.stage3", "encoder.stage4", "decoder.stage3", "decoder.stage4"))
                         for n in names)
    assert {n.split(".")[1] for n in names} == {"stage3", "stage4"}
    full = build_model(_config())
    assert len(full.memory_modules()) > len(names)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in full.parameters())
    out = model.eval()(_x(2))
    assert len(out) == 1 and out[0].shape == (2, 3, 64, 64)
    old = _config().to_dict()
    del old["lite_memory_stages"]  # checkpoints from before the field had DMW-LA at every stage
    assert ModelConfig.from_dict(old).lite_memory_stages == (1, 2, 3, 4)
    assert ModelConfig.from_dict(config.to_dict()).lite_memory_stages == (3, 4)
    with pytest.raises(ValueError, match="stage numbers 1-4"):
        replace(_config(), lite_memory_stages=(0, 5))
