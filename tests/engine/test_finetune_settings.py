"""A fine-tune's settings -> engine configs, and the suggested checkpoint path."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.config import MemoryConfig, ModelConfig, NormConfig, TrainConfig
from napari_smp.engine.finetune_settings import (
    WLDSettings,
    model_config_for,
    suggest_checkpoint_path,
    train_config_for,
)


def test_model_config_takes_classes_from_labels_and_wld_from_controls():
    labels = np.zeros((3, 4, 4), np.uint8)
    labels[1, 0, 0] = 3
    base = ModelConfig(preset="lite", img_size=32, memory=MemoryConfig(slots=8, dim=16), use_memory=True)
    cfg = model_config_for("lite", labels, WLDSettings(4, 0.25, 0.75, "clamp"), NormConfig(mode="ct"),
                           {1: "liver", 3: "spleen"}, base)
    assert cfg.num_classes == 3 and cfg.img_size == 32  # the painted and named values, not 0..3
    assert cfg.class_names == ["background", "liver", "spleen"] and cfg.class_values == [0, 1, 3]
    assert (cfg.memory.k_init, cfg.memory.k_policy, cfg.memory.slots) == (4, "clamp", 8)
    assert cfg.norm.mode == "ct"
    auto = model_config_for("paper", labels, WLDSettings(), NormConfig(), None)
    assert auto.preset == "paper" and auto.memory.k_init is None and auto.class_names == ["background", "class 3"]
    assert auto.img_size == 256 and model_config_for("lite", labels, WLDSettings(), NormConfig()).img_size == 128
    assert model_config_for("lite", labels, WLDSettings(), NormConfig(), None, base, img_size=96).img_size == 96
    with pytest.raises(ValueError, match="multiple of 32"):
        model_config_for("lite", labels, WLDSettings(), NormConfig(), img_size=100)
    assert cfg.use_memory and not model_config_for("lite", labels, WLDSettings(), NormConfig(),
                                                   use_memory=False).use_memory
    # each preset's own default unless the box says otherwise: lite without the bank, paper with it
    assert not model_config_for("lite", labels, WLDSettings(), NormConfig()).use_memory
    assert auto.use_memory and model_config_for("lite", labels, WLDSettings(), NormConfig(), use_memory=True).use_memory


@pytest.mark.parametrize("wld, msg", [(WLDSettings(0, 0.8, 0.5), "low < high"),
                                      (WLDSettings(7, 0.25, 0.75), "outside the bounds"),
                                      (WLDSettings(4, 0.25, 0.75, "wrap"), "reset or clamp")])
def test_bad_wld_settings_are_refused_with_a_sentence(wld, msg):
    with pytest.raises(ValueError, match=msg):
        wld.check(8)


def test_train_config_keeps_advanced_fields_and_maps_zero_budget_to_none():
    t = train_config_for(12, 0, "cpu", TrainConfig(batch_size=2, lr=3e-3))
    assert (t.steps, t.time_budget, t.device, t.batch_size, t.lr) == (12, None, "cpu", 2, 3e-3)
    assert train_config_for(5, 30.5, "auto").time_budget == 30.5


def test_suggested_path_sits_beside_the_source_file(tmp_path):
    src = tmp_path / "ct" / "case1.nii.gz"
    assert suggest_checkpoint_path("case 1", str(src)) == tmp_path / "ct" / "case_1-finetuned.safetensors"
    assert suggest_checkpoint_path("x", "", tmp_path) == tmp_path / "x-finetuned.safetensors"
