import numpy as np
import pytest
import torch
from tiny import tiny_config, toy_volume

from napari_smp.config import TrainConfig
from napari_smp.engine.errors import EngineError
from napari_smp.engine.inference.predictor import Predictor
from napari_smp.engine.training.finetune import finetune
from napari_smp.engine.training.loop import scheduled_lr


def _sparse(labels, keep):
    sparse = np.zeros_like(labels)
    sparse[keep] = labels[keep]
    return sparse


@pytest.mark.parametrize(
    ("soft_labels", "prediction"),
    [(True, "finest"), (False, "finest"), (True, "sum")],
    ids=["fractions", "indices", "sum-of-heads"],
)
def test_finetune_learns_painted_classes_on_unpainted_slices(soft_labels: bool, prediction: str):
    from dataclasses import replace

    image, labels = toy_volume(depth=12)
    painted = [2, 6, 9]
    cfg = replace(tiny_config(warmup=10), lite_prediction=prediction)
    reports = []
    result = finetune(
        image,
        _sparse(labels, painted),
        config=cfg,
        train=TrainConfig(steps=120, batch_size=6, lr=3e-3, device="cpu", amp=False, soft_labels=soft_labels),
        callback=reports.append,
    )
    assert result.stopped == "steps" and len(reports) == 120
    first, last = np.mean([r.loss for r in reports[:10]]), np.mean([r.loss for r in reports[-10:]])
    assert last < 0.6 * first, (first, last)
    slots = cfg.memory.slots
    assert all(slots // 4 <= r.k <= 3 * slots // 4 for r in reports)
    assert reports[0].warming_up and not reports[-1].warming_up
    lrs = [r.lr for r in reports]  # the default poly schedule, as the widget plots it
    assert lrs[0] == 3e-3 and all(b < a for a, b in zip(lrs, lrs[1:], strict=False)) and lrs[-1] < 0.05 * 3e-3
    pred = Predictor(result.model, result.config).predict(image).labels
    unpainted = np.setdiff1d(np.arange(12), painted)
    for c in (1, 2):
        p, g = pred[unpainted] == c, labels[unpainted] == c
        dice = 2 * (p & g).sum() / (p.sum() + g.sum())
        assert dice > 0.7, (c, dice)  # chance level for these discs is below 0.1


def test_the_loss_supervises_what_the_network_predicts(monkeypatch):
    from dataclasses import replace

    from napari_smp.config import ModelConfig
    from napari_smp.engine.training import loop as trainer

    assert trainer.default_supervision(ModelConfig()) == "auxiliary"  # lite predicts from its finest head
    assert trainer.default_supervision(ModelConfig(lite_prediction="sum")) == "heads"
    assert trainer.default_supervision(ModelConfig(preset="paper")) == "subsets"
    assert trainer.default_supervision(None) == "heads"
    seen, loss = [], trainer.deep_supervision_loss

    def spy(heads, target, *args, mode, **kwargs):
        seen.append((len(heads), mode))
        return loss(heads, target, *args, mode=mode, **kwargs)

    monkeypatch.setattr(trainer, "deep_supervision_loss", spy)
    image, labels = toy_volume(depth=6)
    for prediction, mode in (("finest", "auxiliary"), ("sum", "heads")):
        seen.clear()
        finetune(image, _sparse(labels, [2, 4]), config=replace(tiny_config(warmup=2), lite_prediction=prediction),
                 train=TrainConfig(steps=2, batch_size=2, device="cpu", amp=False))
        assert seen == [(5, mode)] * 2, prediction
    seen.clear()
    finetune(image, _sparse(labels, [2, 4]), config=tiny_config(warmup=2),
             train=TrainConfig(steps=1, batch_size=2, device="cpu", amp=False, deep_supervision="heads"))
    assert seen == [(5, "heads")]  # a mode given by the user wins


def test_a_model_without_memory_bank_reports_no_k():
    from dataclasses import replace

    image, labels = toy_volume(depth=6)
    reports = []
    result = finetune(
        image,
        _sparse(labels, [2, 4]),
        config=replace(tiny_config(warmup=2), use_memory=False),
        train=TrainConfig(steps=5, batch_size=2, device="cpu", amp=False),
        callback=reports.append,
    )
    assert result.model.memory_modules() == [] and len(reports) == 5
    assert all(r.k is None and not r.warming_up for r in reports)
    assert reports[-1].summary() == f"loss {reports[-1].loss:.3f}"  # no K to show
    with_bank = finetune(image, _sparse(labels, [2, 4]), config=tiny_config(warmup=2),
                         train=TrainConfig(steps=3, batch_size=2, device="cpu", amp=False)).reports[-1]
    assert with_bank.summary().endswith(f", K {with_bank.k}") and with_bank.k is not None


def test_lr_schedules_known_values():
    steps = TrainConfig(lr=1e-3, steps=100)
    assert scheduled_lr(steps, 1, 0.0) == pytest.approx(1e-3)
    assert scheduled_lr(steps, 51, 0.0) == pytest.approx(1e-3 * 0.5**0.9)
    assert scheduled_lr(steps, 101, 0.0) == 0.0
    # with a time budget, whichever limit is nearer sets the progress
    timed = TrainConfig(lr=1e-3, steps=100, time_budget=40.0)
    assert scheduled_lr(timed, 11, 30.0) == pytest.approx(1e-3 * 0.25**0.9)
    assert scheduled_lr(timed, 91, 4.0) == pytest.approx(1e-3 * 0.1**0.9)
    assert scheduled_lr(timed, 1, 55.0) == 0.0
    constant = TrainConfig(lr=1e-3, steps=100, time_budget=40.0, lr_schedule="constant")
    assert scheduled_lr(constant, 90, 39.0) == 1e-3
    with pytest.raises(ValueError, match="lr_schedule"):  # the config refuses it when built
        TrainConfig(lr_schedule="cosine")
    changed = TrainConfig()
    changed.lr_schedule = "cosine"  # and the schedule, if a field was changed afterwards
    with pytest.raises(EngineError, match="lr_schedule"):
        scheduled_lr(changed, 1, 0.0)


def test_constant_schedule_keeps_the_lr_in_every_step():
    image, labels = toy_volume()
    result = finetune(
        image,
        _sparse(labels, [3]),
        config=tiny_config(),
        train=TrainConfig(steps=5, batch_size=2, device="cpu", amp=False, lr=2e-3, lr_schedule="constant"),
    )
    assert [r.lr for r in result.reports] == [2e-3] * 5


def test_cancel_keeps_a_consistent_model():
    image, labels = toy_volume()
    reports = []
    result = finetune(
        image,
        _sparse(labels, [3]),
        config=tiny_config(),
        train=TrainConfig(steps=50, batch_size=2, device="cpu", amp=False),
        callback=reports.append,
        cancel=lambda: len(reports) >= 4,
    )
    assert result.stopped == "cancelled" and len(result.reports) == 4
    assert not result.model.training
    out = Predictor(result.model, result.config).predict(image).labels
    assert out.shape == image.shape


def test_time_budget_stops_the_run():
    image, labels = toy_volume()
    result = finetune(
        image,
        _sparse(labels, [3]),
        config=tiny_config(),
        train=TrainConfig(steps=10_000, time_budget=1.0, batch_size=2, device="cpu", amp=False),
    )
    assert result.stopped == "time" and 0 < len(result.reports) < 10_000


def test_same_seed_same_run():
    image, labels = toy_volume()
    runs = [
        finetune(
            image,
            _sparse(labels, [3, 6]),
            config=tiny_config(),
            train=TrainConfig(steps=6, batch_size=2, device="cpu", amp=False, seed=5),
        )
        for _ in range(2)
    ]
    assert [r.loss for r in runs[0].reports] == [r.loss for r in runs[1].reports]


def test_no_annotation_is_refused():
    image, labels = toy_volume()
    with pytest.raises(EngineError, match="no annotated slice"):
        finetune(image, np.zeros_like(labels), config=tiny_config(), train=TrainConfig(steps=1, device="cpu"))


def test_mismatched_labels_are_refused():
    image, labels = toy_volume()
    with pytest.raises(EngineError, match="shape"):
        finetune(image, labels[:, :-1], config=tiny_config(), train=TrainConfig(steps=1, device="cpu"))


def test_more_classes_than_checkpoint_and_absent_classes(tmp_path):
    from napari_smp.engine.checkpoint import save_checkpoint

    image, labels = toy_volume()
    base = finetune(
        image,
        _sparse(labels, [3]),
        config=tiny_config(num_classes=3),
        train=TrainConfig(steps=2, batch_size=2, device="cpu", amp=False),
    )
    ckpt = save_checkpoint(tmp_path / "m.safetensors", base.model, base.config)
    too_many = _sparse(labels, [3])
    too_many[3, 0, 0] = 5
    with pytest.raises(EngineError, match="label value 5, which the model does not know"):
        finetune(image, too_many, init=ckpt, train=TrainConfig(steps=1, device="cpu"))
    only_one = _sparse(labels, [3])
    only_one[only_one == 2] = 0
    with pytest.warns(UserWarning, match="absent from the annotation"):
        res = finetune(
            image, only_one, init=ckpt, train=TrainConfig(steps=1, batch_size=2, device="cpu", amp=False)
        )
    assert res.notes and "class 2" in res.notes[0]


def test_slice_set_stores_class_fractions_compactly():
    from napari_smp.engine.training.slice_set import SliceSet

    image, labels = toy_volume(depth=6)  # 40 x 40 slices, a 32 x 32 model: a real resize
    cfg = tiny_config()
    hard = SliceSet.from_volume(image, labels, np.array([1, 4]), cfg)
    soft = SliceSet.from_volume(image, labels, np.array([1, 4]), cfg, soft=True)
    assert hard.labels.dtype == torch.long and hard.labels.shape == (2, 32, 32)
    assert soft.labels.dtype == torch.uint8 and soft.labels.shape == (2, 3, 32, 32)
    x, y = soft.sample(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, cfg.in_channels, 32, 32) and y.dtype == torch.float32 and y.shape == (4, 3, 32, 32)
    torch.testing.assert_close(y.sum(1), torch.ones(4, 32, 32))
    # the discs' interiors agree with nearest neighbour; only their rims are shared between classes
    assert (soft.labels.argmax(1) == hard.labels).float().mean() > 0.95
    rim = (soft.labels.max(1).values < 252).float().mean()
    assert 0.02 < rim < 0.3
