"""A bank seeded from the painted classes (MemoryConfig.bank_init = "labels")."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_smp.config import MemoryConfig, ModelConfig, TrainConfig
from napari_smp.engine.training.finetune import finetune
from napari_smp.model import build_model
from napari_smp.model.memory_bank import DMWLA


def _module() -> DMWLA:
    torch.manual_seed(0)
    return DMWLA(channels=6, dim=5, clusters=3, slots=8, warmup_steps=2, seed=4, seed_from_labels=True)


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, 6, 4, 4) features and (2, 16, 16) labels: class 1 on the left half, class 2 on one pixel."""
    x = torch.randn(2, 6, 4, 4, generator=torch.Generator().manual_seed(seed))
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, :, :8] = 1
    labels[:, 13, 14] = 2  # inside feature cell (3, 3)
    return x, labels


def _cells(m: DMWLA, x: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """phi features of the given feature cells, (N, D)."""
    return m.phi(x)[:, :, rows, cols].flatten(2).transpose(1, 2).reshape(-1, 5)


def _is_row_of(slots: torch.Tensor, candidates: torch.Tensor) -> bool:
    gaps = torch.cdist(slots, candidates, compute_mode="donot_use_mm_for_euclid_dist")
    return bool((gaps.min(dim=1).values < 1e-5).all())


def test_each_block_holds_only_features_of_its_own_class() -> None:
    m = _module()
    m.train()
    seen = {0: [], 1: [], 2: []}
    for step in range(2):
        x, labels = _batch(step)
        seen[0].append(_cells(m, x, slice(None), slice(2, 4)))  # the right half: background
        seen[1].append(_cells(m, x, slice(None), slice(0, 2)))
        seen[2].append(_cells(m, x, slice(3, 4), slice(3, 4)))
        m.targets = labels
        m(x)
        m.targets = None
        m.step_memory()  # the second call ends the warm-up
    assert not m.warming_up
    for c in range(3):
        assert _is_row_of(m.pool[c], torch.cat(seen[c])), f"block {c} holds a feature of another class"
    # the one cell with class 2 in each image is all that block 2 can hold: a pixel still seeds it
    assert torch.cat(seen[2]).shape[0] == 4
    torch.testing.assert_close(m.prototypes, F.normalize(m.pool.mean(dim=1), dim=1))


def test_without_labels_the_warm_up_falls_back_to_kmeans() -> None:
    m = _module()
    m.train()
    for step in range(2):
        m(_batch(step)[0])
        m.step_memory()
    assert int(m.labelled_writes) == 0
    # k-means centroids, not block means: at least one prototype differs from its block's mean
    assert not torch.allclose(m.prototypes, F.normalize(m.pool.mean(dim=1), dim=1))


def test_a_class_never_painted_copies_background_and_is_never_routed() -> None:
    m = _module()
    m.train()
    for step in range(2):
        x, labels = _batch(step)
        m.targets = labels.clamp(max=1)  # class 2 absent
        m(x)
        m.targets = None
        m.step_memory()
    torch.testing.assert_close(m.pool[2], m.pool[0])
    assert (m.route(torch.randn(500, 5, generator=torch.Generator().manual_seed(1))) != 2).all()


def test_lite_defaults_to_labels_and_paper_to_kmeans() -> None:
    shared = MemoryConfig()
    assert ModelConfig(preset="lite", memory=shared).memory.bank_init == "labels"
    assert ModelConfig(preset="paper", img_size=256, memory=shared).memory.bank_init == "kmeans"
    assert shared.bank_init is None  # resolved on a copy
    assert ModelConfig(memory=MemoryConfig(bank_init="kmeans")).memory.bank_init == "kmeans"
    with pytest.raises(ValueError, match="unknown memory.bank_init"):
        ModelConfig(memory=MemoryConfig(bank_init="random"))
    # clusters other than the classes: nothing to seed from, k-means as before
    other = build_model(ModelConfig(num_classes=3, memory=MemoryConfig(clusters=5, dim=32, decoder_dim=32)))
    seeded = {name: m.seed_from_labels for name, m in other.memory_modules()}
    assert not any(v for k, v in seeded.items() if k.startswith("encoder")) and all(
        v for k, v in seeded.items() if k.startswith("decoder")
    )


def test_finetune_seeds_every_bank_from_the_painted_slices(tiny_cfg, toy) -> None:
    image, labels = toy
    sparse = np.zeros_like(labels)
    sparse[[2, 7]] = labels[[2, 7]]
    config = replace(tiny_cfg, memory=replace(tiny_cfg.memory, bank_init="labels"))
    result = finetune(image, sparse, config=config, train=TrainConfig(steps=5, batch_size=2, device="cpu", amp=False))
    modules = result.model.memory_modules()
    assert modules and all(int(m.labelled_writes) == m.warmup_steps for _, m in modules)
    assert all(m.targets is None for _, m in modules)  # labels are not kept after the forward
    # the count is no checkpoint tensor: files written before it load without a missing key
    assert not any(k.endswith("labelled_writes") for k in result.model.state_dict())
    for _, m in modules:  # three classes painted: three distinct prototypes
        assert torch.cdist(m.prototypes, m.prototypes).fill_diagonal_(1.0).min() > 1e-4


def test_the_model_asks_for_labels_only_while_a_class_seeded_bank_warms_up(tiny_cfg) -> None:
    seeded = build_model(replace(tiny_cfg, memory=replace(tiny_cfg.memory, bank_init="labels")))
    assert seeded.reads_labels  # warm-up: the trainer hands it every batch's labels
    for _ in range(tiny_cfg.memory.warmup_steps):
        seeded.memory_step(1.0)
    assert not seeded.reads_labels  # after it, no forward reads them, so fit skips the argmax
    kmeans = build_model(replace(tiny_cfg, memory=replace(tiny_cfg.memory, bank_init="kmeans")))
    assert not kmeans.reads_labels
    assert not build_model(replace(tiny_cfg, use_memory=False)).reads_labels
