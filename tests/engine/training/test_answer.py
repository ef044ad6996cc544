"""The answer a fine-tuned lite network keeps (engine/training/answer.py): scored on the painted slices."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny import tiny_config, toy_volume

from napari_smp.config import InferConfig, ModelConfig, TrainConfig
from napari_smp.engine.inference.predictor import Predictor
from napari_smp.engine.slices import resize_slices
from napari_smp.engine.training.answer import SUM_MARGIN, answer_scores, choose_answer, describe_answer
from napari_smp.engine.training.finetune import finetune
from napari_smp.engine.training.slice_set import SliceSet
from napari_smp.engine.volumes import normalize_volume


class _TwoAnswers(torch.nn.Module):
    """Five fixed heads: the finest is ``finest``, and the five together sum to ``total`` (logits)."""

    def __init__(self, config: ModelConfig, finest: torch.Tensor, total: torch.Tensor) -> None:
        super().__init__()
        self.config = config
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.finest, self.rest = finest, (total - finest) / 4

    def forward(self, x: torch.Tensor, all_heads: bool = False) -> tuple[torch.Tensor, ...]:
        n = len(x)
        finest = self.finest[:n]
        if not self.training and self.config.lite_prediction == "finest" and not all_heads:
            return (finest,)
        return (*[self.rest[:n]] * 4, finest)

    def answer_with(self, answer: str) -> ModelConfig:  # as SimMPNet.answer_with
        self.config = replace(self.config, lite_prediction=answer)
        return self.config


def _onehot_logits(labels: torch.Tensor, n_cls: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, n_cls).permute(0, 3, 1, 2).float() * 10


def _data() -> tuple[SliceSet, torch.Tensor]:
    labels = torch.zeros(3, 32, 32, dtype=torch.long)
    labels[:, 4:12, 4:12] = 1  # 64 pixels of class 1 per slice
    labels[:, 20:28, 20:28] = 2
    return SliceSet(torch.rand(3, 1, 32, 32), labels), labels


def test_scores_are_the_pooled_dice_of_each_answer() -> None:
    data, labels = _data()
    wrong = labels.clone()
    wrong[:, 4:12, 4:8] = 0  # half of class 1 missed: Dice 2*32 / (32 + 64) = 2/3; class 2 perfect
    config = replace(tiny_config(), use_memory=False)
    model = _TwoAnswers(config, _onehot_logits(labels, 3), _onehot_logits(wrong, 3)).train()
    scores = answer_scores(model, data)
    assert scores["finest"] == pytest.approx(1.0)
    assert scores["sum"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert model.training and model.config is config  # mode and config restored


@pytest.mark.parametrize("sum_is_better", [False, True])
def test_the_better_answer_is_kept_in_the_config(sum_is_better: bool) -> None:
    data, labels = _data()
    wrong = labels.clone()
    wrong[:, 20:28, 20:24] = 1
    good, bad = _onehot_logits(labels, 3), _onehot_logits(wrong, 3)
    config = replace(tiny_config(), use_memory=False)
    model = _TwoAnswers(config, bad if sum_is_better else good, good if sum_is_better else bad)
    chosen, scores = choose_answer(model, data)
    assert chosen.lite_prediction == ("sum" if sum_is_better else "finest")
    assert model.config is chosen
    assert max(scores.values()) == pytest.approx(1.0)
    text = describe_answer(chosen, scores)
    assert text.startswith("answers with its " + ("sum of heads" if sum_is_better else "finest head"))


def test_a_tie_keeps_the_finest_head() -> None:
    data, labels = _data()
    logits = _onehot_logits(labels, 3)
    model = _TwoAnswers(replace(tiny_config(), use_memory=False), logits, logits)
    assert choose_answer(model, data)[0].lite_prediction == "finest"


def test_the_sum_must_win_by_the_margin() -> None:
    data, labels = _data()
    nearly = labels.clone()
    nearly[0, 4, 4] = 0  # the finest head misses one of 192 pixels of class 1: mean Dice 0.9987 against 1
    model = _TwoAnswers(replace(tiny_config(), use_memory=False), _onehot_logits(nearly, 3), _onehot_logits(labels, 3))
    chosen, scores = choose_answer(model, data)
    assert 0 < scores["sum"] - scores["finest"] < SUM_MARGIN
    assert chosen.lite_prediction == "finest"


def test_the_paper_preset_and_eval_writing_banks_are_not_asked() -> None:
    data, labels = _data()
    logits = _onehot_logits(labels, 3)
    for config in (ModelConfig(preset="paper", num_classes=3), replace(tiny_config(), faithful_eval_updates=True)):
        model = _TwoAnswers(config, _onehot_logits(torch.zeros_like(labels), 3), logits)  # the sum is better
        assert choose_answer(model, data) == (config, {})
        assert model.config is config
    assert describe_answer(config, {}) == ""


def test_a_fine_tune_can_keep_the_configs_answer() -> None:
    image, labels = toy_volume(depth=6)
    sparse = np.zeros_like(labels)
    sparse[[1, 4]] = labels[[1, 4]]
    for prediction in ("sum", "finest"):
        config = replace(tiny_config(), lite_prediction=prediction)
        train = TrainConfig(steps=3, batch_size=2, device="cpu", threads=1, choose_answer=False)
        result = finetune(image, sparse, config=config, train=train)
        assert result.config.lite_prediction == prediction and result.answers == {} and result.answer() == ""


def test_finetune_predicts_with_the_answer_it_reports() -> None:
    image, labels = toy_volume(depth=8)
    sparse = np.zeros_like(labels)
    sparse[[1, 4, 6]] = labels[[1, 4, 6]]
    result = finetune(
        image, sparse, config=tiny_config(), train=TrainConfig(steps=12, batch_size=4, device="cpu", threads=1)
    )
    chosen = result.config.lite_prediction
    assert set(result.answers) == {"finest", "sum"}
    assert result.answers[chosen] >= max(result.answers.values())
    assert result.model.config is result.config
    # the predictor answers with the kept answer: recompute both from the heads of one forward
    predictor = Predictor(result.model, result.config, InferConfig(device="cpu", amp=False))
    pred = predictor.predict(image).labels
    x = resize_slices(torch.from_numpy(normalize_volume(image, result.config.norm))[:, None], 32)
    result.model.config = replace(result.config, lite_prediction="sum")
    with torch.inference_mode():
        heads = result.model(x)
    result.model.config = result.config
    logits = heads[-1] if chosen == "finest" else torch.stack(heads).sum(0)
    size = image.shape[1:]
    expected = resize_slices(logits, size).argmax(1)
    np.testing.assert_array_equal(pred, expected.numpy())
