"""2.5D input: neighbouring slices as channels (ModelConfig.slice_context), end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny_config

from napari_smp.config import InferConfig, ModelConfig, NormConfig, TrainConfig
from napari_smp.engine.checkpoint import load_checkpoint, save_checkpoint
from napari_smp.engine.inference.predictor import Predictor
from napari_smp.engine.pretraining.data import SliceBank
from napari_smp.engine.slices import slice_stack
from napari_smp.engine.training.finetune import finetune
from napari_smp.engine.training.slice_set import SliceSet
from napari_smp.model import build_model


def _context_config(context: int = 1) -> ModelConfig:
    return replace(tiny_config(), slice_context=context)


def test_stack_puts_the_slice_in_the_middle_and_repeats_the_edges() -> None:
    norm = np.broadcast_to(np.arange(10, dtype=np.float32)[:, None, None], (10, 2, 2)).copy()
    stack = slice_stack(norm, [0, 5, 9], context=1, channels=3)
    assert stack.shape == (3, 3, 2, 2)
    np.testing.assert_array_equal(stack[:, :, 0, 0].numpy(), [[0, 0, 1], [4, 5, 6], [8, 9, 9]])
    wide = slice_stack(norm, [1], context=2, channels=5)
    np.testing.assert_array_equal(wide[0, :, 0, 0].numpy(), [0, 0, 1, 2, 3])
    grey = slice_stack(norm, [4], context=0, channels=3)  # no context: the slice, repeated
    np.testing.assert_array_equal(grey[0, :, 0, 0].numpy(), [4, 4, 4])


def test_config_sets_the_channels_and_old_checkpoints_see_one_slice() -> None:
    assert _context_config(1).in_channels == 3 and _context_config(2).in_channels == 5
    with pytest.raises(ValueError, match="in_channels=2 cannot hold"):
        ModelConfig(slice_context=1, in_channels=2)
    assert replace(_context_config(1), slice_context=2).in_channels == 5  # a replace widens the stack
    assert replace(_context_config(3), slice_context=1).in_channels == 3
    with pytest.raises(ValueError, match="0-3 neighbouring slices"):
        ModelConfig(slice_context=4)
    old = _context_config(1).to_dict()
    assert ModelConfig.from_dict(old).slice_context == 1
    del old["slice_context"], old["in_channels"]  # what checkpoints written before the field hold
    rebuilt = ModelConfig.from_dict(old)
    assert rebuilt.slice_context == 0 and rebuilt.in_channels == 1


def test_training_slices_carry_their_real_neighbours(toy) -> None:
    image, labels = toy
    config = _context_config(1)
    data = SliceSet.from_volume(image, labels, np.array([0, 4]), config)
    assert data.images.shape == (2, 3, 32, 32)
    single = replace(tiny_config(), img_size=32)
    for channel, z in enumerate([3, 4, 5]):  # slice 4's channels are slices 3, 4 and 5
        alone = SliceSet.from_volume(image, labels, np.array([z]), single).images[0, 0]
        torch.testing.assert_close(data.images[1, channel], alone)
    torch.testing.assert_close(data.images[0, 0], data.images[0, 1])  # slice 0 has no slice -1


@pytest.fixture
def context_predictor() -> Predictor:
    torch.manual_seed(0)
    # a fixed window, so that changing one slice cannot move the volume's percentiles
    config = replace(_context_config(1), norm=NormConfig(mode="ct", window=(-1.5, 1.5)))
    return Predictor(build_model(config), config, InferConfig(device="cpu", batch_size=4, amp=False))


def test_prediction_reads_the_neighbours_and_only_them(context_predictor: Predictor, toy) -> None:
    image, _ = toy
    base = context_predictor.predict(image, probabilities=True).probabilities.astype(np.float32)
    changed = image.copy()
    changed[6] = changed[6].max()  # a blank bright slice; a neighbour of slices 5 and 7 only
    after = context_predictor.predict(changed, probabilities=True).probabilities.astype(np.float32)
    change = np.abs(after - base).max(axis=(0, 2, 3))  # per slice
    moved = [z for z in range(image.shape[0]) if change[z] > 5e-4]
    assert moved == [5, 6, 7], change


def test_prediction_does_not_depend_on_batch_boundaries(context_predictor: Predictor, toy) -> None:
    image, _ = toy
    a = context_predictor.predict(image, probabilities=True)
    context_predictor.infer.batch_size = 3  # neighbours fall in other batches now
    b = context_predictor.predict(image, probabilities=True)
    np.testing.assert_array_equal(a.labels, b.labels)
    # float16 probabilities; other batch shapes may round differently, a neighbour mix-up would not
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=2e-3)


def test_finetune_save_load_keeps_the_context_and_the_logits(toy, tmp_path: Path) -> None:
    image, labels = toy
    sparse = np.zeros_like(labels)
    sparse[[2, 7]] = labels[[2, 7]]
    result = finetune(
        image, sparse, config=_context_config(1), train=TrainConfig(steps=6, batch_size=2, device="cpu", amp=False)
    )
    path = save_checkpoint(tmp_path / "ctx.safetensors", result.model, result.config)
    model, config = load_checkpoint(path)
    assert config.slice_context == 1 and config.in_channels == 3
    infer = InferConfig(device="cpu", amp=False)
    a = Predictor(result.model, result.config, infer).predict(image, probabilities=True).probabilities
    b = Predictor(model, config, infer).predict(image, probabilities=True).probabilities
    np.testing.assert_array_equal(a, b)


def test_pretraining_slices_carry_their_neighbours(toy) -> None:
    image, _ = toy
    bank = SliceBank.from_volumes([image], _context_config(1), superpixels=False)
    assert bank.images.shape[1] == 3
    torch.testing.assert_close(bank.images[1:-1, 0], bank.images[:-2, 1])  # channel 0 is the slice before
    torch.testing.assert_close(bank.images[1:-1, 2], bank.images[2:, 1])
