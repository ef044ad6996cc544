"""The MONAI U-Net peer of benchmarks/fewshot.py: trained by the engine's loop, so only the network differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_config, toy_volume

from napari_smp.config import InferConfig, TrainConfig
from napari_smp.engine.inference.predictor import Predictor
from napari_smp.engine.training import finetune, loop

pytest.importorskip("monai")  # benchmarks/ is on sys.path (conftest.py)

from _unet_peer import finetune_unet  # noqa: E402
from fewshot import Row, format_score, table_lines  # noqa: E402


def _sparse(labels: np.ndarray, painted: list[int]) -> np.ndarray:
    sparse = np.zeros_like(labels)
    sparse[painted] = labels[painted]
    return sparse


def test_unet_trains_on_the_painted_slices_and_predicts_the_volume() -> None:
    image, labels = toy_volume()
    train = TrainConfig(steps=3, batch_size=2, device="cpu", threads=1)
    result = finetune_unet(image, _sparse(labels, [2, 7]), config=tiny_config(), train=train, slices=[0])
    assert result.stopped == "steps" and len(result.reports) == 3
    assert all(r.k is None for r in result.reports)  # no memory bank, as for the plain network
    assert result.slices.tolist() == [0, 2, 7]
    pred = Predictor(result.model, result.config, InferConfig(device="cpu", threads=1)).predict(image)
    assert pred.labels.shape == image.shape and pred.labels.max() < 3


def test_unet_sees_the_very_batches_ours_sees(monkeypatch) -> None:
    """Same slices, normalisation, resize and sampling: the batches entering augmentation are identical."""
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"ours": [], "unet": []}
    current = []
    original = loop.augment_batch

    def recording(x, y, gen, **kwargs):
        seen[current[-1]].append((x.clone(), y.clone()))
        return original(x, y, gen, **kwargs)

    monkeypatch.setattr(loop, "augment_batch", recording)
    image, labels = toy_volume()
    sparse = _sparse(labels, [3, 6])
    train = TrainConfig(steps=2, batch_size=3, device="cpu", threads=1, seed=5)
    current.append("ours")
    finetune(image, sparse, config=tiny_config(), train=train)
    current.append("unet")
    finetune_unet(image, sparse, config=tiny_config(), train=train)
    assert len(seen["ours"]) == len(seen["unet"]) == 2
    for (xo, yo), (xu, yu) in zip(seen["ours"], seen["unet"], strict=True):
        assert torch.equal(xo, xu) and torch.equal(yo, yu)


def test_table_keeps_only_the_methods_run() -> None:
    row = Row("devct", "2", [0, 1], scores={"ours": [0.8, 0.7], "unet": [0.6, 0.65]},
              steps={"ours": [10, 11], "unet": [20, 21]}, rates={"ours": [1.0, 1.2], "unet": [2.0, 2.2]})  # fmt: skip
    head, _, line = table_lines([row], ["ours", "unet"])
    assert "MONAI U-Net" in head and "ours - U-Net" in head and "random forest" not in head
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2] == "0.750 ± 0.071" and cells[3] == "0.625 ± 0.035"
    assert cells[4] == "+0.125 ± 0.106"  # the per-seed gaps 0.2 and 0.05
    assert cells[5] == "1.10 / 2.10"
    # with the plain network too: a gap column for each of ours, paired per seed
    row.scores["plain"], row.steps["plain"], row.rates["plain"] = [0.5, 0.7], [12, 13], [1.5, 1.5]
    head, _, line = table_lines([row], ["ours", "plain", "unet"])
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert "ours - U-Net | plain - U-Net" in head and cells[5:7] == ["+0.125 ± 0.106", "-0.025 ± 0.106"]
    assert format_score([0.5]) == "0.500" and format_score([-0.25], signed=True) == "-0.250"
