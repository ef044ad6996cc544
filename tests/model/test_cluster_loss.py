"""The class-seeded bank's cluster loss (MemoryConfig.prototype_loss): the prototype nearest a cell
should be its class's."""

from __future__ import annotations

import math

import numpy as np
import torch

from napari_smp.model.memory_bank import DMWLA


def _module(clusters: int = 2, weight: float = 1.0) -> DMWLA:
    torch.manual_seed(0)
    m = DMWLA(4, 4, clusters=clusters, slots=4, warmup_steps=1, seed_from_labels=True, tied_writes=True,
              prototype_loss=weight, prototype_temperature=0.1)
    m.step.fill_(1)  # past the warm-up
    with torch.no_grad():
        protos = torch.zeros(clusters, 4)
        protos[0, 0] = protos[1, 1] = 1.0
        if clusters > 2:
            protos[2:] = protos[0]  # a class never painted carries background's prototype
        m.prototypes.copy_(protos)
        m.pool.copy_(protos[:, None].expand(-1, 4, -1))  # prototypes = slot means, as the bank keeps them
    return m


def test_known_answer_for_a_cell_at_its_own_and_at_the_other_prototype() -> None:
    m = _module()
    share = torch.tensor([[0.0, 1.0]])  # one cell, all class 1
    at_own = m.cluster_loss(torch.tensor([[[0.0, 2.0, 0.0, 0.0]]]), share)  # cosine 1 to class 1, 0 to 0
    at_other = m.cluster_loss(torch.tensor([[[3.0, 0.0, 0.0, 0.0]]]), share)
    assert math.isclose(float(at_own), math.log1p(math.exp(-10.0)), abs_tol=1e-5)
    assert math.isclose(float(at_other), 10.0 + math.log1p(math.exp(-10.0)), abs_tol=1e-5)
    # a cell split between two classes: the soft target's cross-entropy
    half = m.cluster_loss(torch.tensor([[[0.0, 1.0, 0.0, 0.0]]]), torch.tensor([[0.5, 0.5]]))
    assert math.isclose(float(half), 0.5 * (10.0 + math.log1p(math.exp(-10.0))) + 0.5 * math.log1p(math.exp(-10.0)),
                        abs_tol=1e-5)


def test_a_class_never_painted_is_left_out_of_the_softmax() -> None:
    """Its prototype is background's copy: counted, it would halve every background cell's odds."""
    feats = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]])
    share2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    share3 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    two, three = _module(2).cluster_loss(feats, share2), _module(3).cluster_loss(feats, share3)
    torch.testing.assert_close(two, three)


def test_a_training_forward_leaves_the_weighted_loss_and_trains_cells_toward_their_class() -> None:
    m = _module(weight=2.0).train()
    gen = torch.Generator().manual_seed(1)
    x = 0.3 * torch.randn(2, 4, 4, 4, generator=gen)
    x[:, 2, :, :2] += 1.0  # the left cells share a direction the right ones lack
    x[:, 3, :, 2:] += 1.0
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, :, :8] = 1  # left half class 1
    opt = torch.optim.SGD([p for n, p in m.named_parameters() if n.startswith(("theta", "phi"))], lr=0.5)
    m.write_momentum = 0.0  # the bank stays where it is: only the features move
    losses = []
    for _ in range(150):
        m.targets = labels
        m(x)
        loss = m.aux_loss
        m.aux_loss = None
        assert loss is not None and loss.requires_grad
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.25 * losses[0]
    m.eval()
    assign = m.similarity(x).argmax(dim=1)  # theta routing
    assert (assign[:, :, :2] == 1).all() and (assign[:, :, 2:] == 0).all()
    # eval forwards and forwards without labels leave no loss behind
    m.targets = labels
    m(x)
    assert m.aux_loss is None


def test_no_loss_during_the_warm_up_or_without_the_weight() -> None:
    x = torch.randn(1, 4, 2, 2)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    warm = _module()
    warm.step.fill_(0)
    off = _module(weight=0.0)
    for m in (warm, off):
        m.train()
        m.targets = labels
        m(x)
        assert m.aux_loss is None
    assert not off.reads_labels or off.tied_writes  # the weight alone does not make a bank read labels


def test_finetune_adds_the_cluster_loss_and_reports_it() -> None:
    import sys
    from dataclasses import replace
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
    from tiny import tiny_config, toy_volume

    from napari_smp.config import TrainConfig
    from napari_smp.engine.training.finetune import finetune

    image, labels = toy_volume()
    paint = np.zeros_like(labels)
    paint[[2, 7]] = labels[[2, 7]]
    config = tiny_config(warmup=3)
    config = replace(config, memory=replace(config.memory, prototype_loss=1.0))
    res = finetune(image, paint, config=config, train=TrainConfig(steps=8, seed=0, threads=1))
    parts = [r.parts.get("cluster_loss") for r in res.reports]
    assert all(p is None for p in parts[:3])  # warm-up: no prototypes yet
    assert all(p is not None and p > 0 for p in parts[3:])
    assert res.config.memory.prototype_loss == 1.0  # kept in the checkpoint's config
    assert res.model.memory_loss() is None  # taken by the trainer each step
