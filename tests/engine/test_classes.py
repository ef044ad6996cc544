"""The class table: a user's label values stay theirs end to end (engine/classes.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tiny import tiny_config, toy_volume

from napari_smp.config import ModelConfig, TrainConfig
from napari_smp.engine.checkpoint import load_checkpoint
from napari_smp.engine.classes import ClassTable
from napari_smp.engine.errors import EngineError
from napari_smp.engine.inference import Predictor
from napari_smp.engine.training import finetune

TOTALSEG = {5: "liver", 52: "aorta"}


def test_the_table_keeps_values_and_maps_both_ways():
    labels = np.array([[0, 5], [52, 5]])
    table = ClassTable.from_painting(labels, TOTALSEG | {21: "stomach"})
    assert table.values == (0, 5, 21, 52) and table.names == ("background", "liver", "stomach", "aorta")
    index = table.to_index(labels)
    assert index.tolist() == [[0, 1], [3, 1]] and index.dtype == np.int64
    np.testing.assert_array_equal(table.to_values(index), labels)
    assert table.to_values(np.array([3])).dtype == np.uint8
    assert ClassTable.build([300]).to_values(np.array([1])).dtype == np.uint16
    with pytest.raises(EngineError, match="label value 7"):
        table.to_index(np.array([7]))


def test_small_paintings_and_identity_tables():
    assert ClassTable.build([]).values == (0, 1)  # background alone still makes a two-class model
    assert ClassTable.build([3]).values == (0, 3)
    identity = ClassTable.build([1, 2])
    assert identity.is_identity and identity.configure(ModelConfig()).class_values is None
    with pytest.raises(EngineError, match="start at 0"):
        ClassTable((1, 2), ("a", "b"))


def test_a_config_remembers_its_table():
    config = ClassTable.build([5, 52], TOTALSEG).configure(ModelConfig())
    assert config.num_classes == 3 and config.class_values == [0, 5, 52]
    assert ModelConfig.from_dict(config.to_dict()).class_values == [0, 5, 52]
    assert ClassTable.from_config(config).by_value == {0: "background", 5: "liver", 52: "aorta"}
    # a checkpoint written before the field: index = value
    assert ClassTable.from_config(ModelConfig(num_classes=3)).values == (0, 1, 2)
    with pytest.raises(ValueError, match="start at 0"):
        ModelConfig(num_classes=2, class_values=[1, 5])


def test_totalsegmentator_values_make_a_small_model_whose_outputs_carry_them(tmp_path):
    image, labels = toy_volume()
    values = np.array([0, 5, 52], np.uint8)[labels]  # class 1 -> 5, class 2 -> 52
    painting = np.zeros_like(values)
    painting[[2, 7]] = values[[2, 7]]
    train = TrainConfig(steps=3, batch_size=2, device="cpu", amp=False)
    config = replace(tiny_config(), num_classes=2, class_names=None)
    result = finetune(image, painting, out=tmp_path / "m.safetensors", config=config, train=train,
                                    class_names=TOTALSEG)  # fmt: skip
    assert result.config.num_classes == 3 and result.config.class_values == [0, 5, 52]
    model, loaded = load_checkpoint(result.path)
    assert loaded.class_names == ["background", "liver", "aorta"] and model.heads[-1].out_channels == 3
    pred = Predictor.from_checkpoint(result.path).predict(image).labels
    assert set(np.unique(pred).tolist()) <= {0, 5, 52}
    # a checkpoint refuses a painting with a value it does not know, in one sentence
    other = painting.copy()
    other[2, 0, 0] = 21
    with pytest.raises(EngineError, match="label value 21"):
        finetune(image, other, out=tmp_path / "n.safetensors", init=result.path, train=train)
    assert not (tmp_path / "n.safetensors").exists()
