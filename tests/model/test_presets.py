"""The presets as compositions: checkpoint names that never change, the bank placement, the wiring."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from napari_smp.config import MemoryConfig, ModelConfig
from napari_smp.model import DMWLA, build_model
from napari_smp.model.presets import BankSpec, DualEncoder

# state_dict names and shapes written by the network before presets.py existed: checkpoints in users'
# hands hold exactly these (the paper's MaxxViT names are test_maxxvit.py's)
NAMES = json.loads((Path(__file__).parent / "fixtures" / "checkpoint_names.json").read_text())
SMALL_BANK = MemoryConfig(slots=8, dim=16, decoder_dim=16, warmup_steps=2, kmeans_iters=5)


def _shapes(model: nn.Module, skip: str = "\0") -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items() if not k.startswith(skip)}


def test_lite_checkpoint_names_are_those_checkpoints_hold() -> None:
    model = build_model(ModelConfig(num_classes=3, img_size=64, use_memory=True, memory=SMALL_BANK))
    assert _shapes(model) == NAMES["lite"]
    assert list(_shapes(model)) == list(NAMES["lite"])


def test_paper_checkpoint_names_are_those_checkpoints_hold_and_the_dual_encoder_wires_them() -> None:
    pytest.importorskip("napari_smp.model.maxxvit")
    model = build_model(
        ModelConfig(preset="paper", num_classes=4, memory=MemoryConfig(slots=8, warmup_steps=1, kmeans_iters=3))
    )
    assert _shapes(model, skip="backbone.") == NAMES["paper"]
    assert isinstance(model.encode, DualEncoder)
    parts = (model.encode.backbone, model.encode.injections, model.encode.gate, model.encode.encoder)
    assert parts == (model.backbone, model.backbone_inject, model.gate, model.encoder)
    assert model.answer == "sum" and model.answer_with("finest").lite_prediction == "finest"
    assert model.answer == "sum"  # the paper network always sums its heads


def test_every_tensor_is_registered_once() -> None:
    model = build_model(ModelConfig(num_classes=3, img_size=64, use_memory=True, memory=SMALL_BANK))
    ids = [id(v) for v in model.state_dict(keep_vars=True).values()]
    assert len(ids) == len(set(ids))
    assert "encode" not in dict(model.named_children())


def test_a_deep_copy_wires_its_own_modules() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=3, img_size=64)).eval()
    twin = copy.deepcopy(model)
    assert twin.encode.__self__ is twin.encoder and twin.encoder is not model.encoder
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.nn.init.zeros_(twin.encoder.stages[0].down[0][0].weight)
        assert not torch.equal(twin(x)[0], model(x)[0])


def test_bank_spec_places_banks_by_width_and_draws_seeds_in_build_order() -> None:
    seeds = itertools.count(7)
    spec = BankSpec(memory=SMALL_BANK, clusters=3, dim=16, widths=frozenset({8, 32}), seeds=seeds, cap_dim=True)
    assert isinstance(spec(16), nn.Identity)  # no bank at this width, and no seed drawn
    narrow, wide = spec(8), spec(32)
    assert isinstance(narrow, DMWLA) and isinstance(wide, DMWLA)
    assert (narrow.dim, wide.dim) == (8, 16)  # D capped at the stage width
    assert (narrow.seed, wide.seed) == (7, 8) and next(seeds) == 9
    assert narrow.slots == 8 and narrow.warmup_steps == 2 and int(narrow.k_update) == 4
    uncapped = BankSpec(memory=SMALL_BANK, clusters=3, dim=16, widths=frozenset({8}), seeds=seeds)
    assert uncapped(8).dim == 16


def test_use_memory_off_places_no_bank_anywhere() -> None:
    config = ModelConfig(num_classes=3, img_size=64, use_memory=False, lite_memory_stages=(1, 2, 3, 4))
    model = build_model(config)
    assert model.memory_modules() == []
    assert all(isinstance(m, nn.Identity) for _, m in model.encoder.memory_modules() + model.decoder.memory_modules())


def test_a_cluster_bank_moves_lite_s_bank_to_stage_one_and_keeps_the_paper_layout():
    lite = ModelConfig(preset="lite").with_cluster_bank()
    assert lite.use_memory and lite.lite_memory_stages == (1,)
    assert (lite.memory.bank_init, lite.memory.tied_writes, lite.memory.write_momentum) == ("labels", True, 0.03)
    assert lite.memory.prototype_loss > 0
    paper = ModelConfig(preset="paper").with_cluster_bank()
    assert paper.lite_memory_stages == ModelConfig(preset="paper").lite_memory_stages and paper.memory.tied_writes
    # a config stored in a checkpoint comes back as it was
    assert ModelConfig.from_dict(lite.to_dict()) == lite
