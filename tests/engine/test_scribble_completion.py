"""complete() with scribbles (axial strokes grown into whole slices; otherwise the network alone on the
marked pixels) and with --init (corrections)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from tiny import tiny_config, toy_volume

from napari_smp.config import TrainConfig
from napari_smp.engine.completion import complete
from napari_smp.engine.errors import EngineError
from napari_smp.engine.training import finetune

sys.path.insert(0, str(Path(__file__).parent / "training"))
from test_scribbles import B, _scribbles  # noqa: E402  (the same strokes as the fine-tune tests)


def _sagittal_scribbles(labels: np.ndarray, columns: list[int]) -> np.ndarray:
    """Strokes drawn on sagittal slices (x fixed): each disc's core, and the background 3 px away from them."""
    out = np.zeros_like(labels)
    for x in columns:
        plane = labels[:, :, x]
        for c in (1, 2):
            out[:, :, x][ndimage.binary_erosion(plane == c, iterations=1)] = c
        far = ~ndimage.binary_dilation(plane > 0, iterations=2)
        out[:, :, x][far] = B
    return out


def test_axial_scribbles_are_grown_into_whole_slices_and_completed_as_painted_ones():
    image, labels = toy_volume(depth=12)
    painted = [2, 6, 9]
    scrib = _scribbles(labels, painted)
    scrib[4, 20, 20] = 1  # a lone mark on another slice: kept as marked, grows nothing
    first = []
    done = complete(image, scrib, background_label=B, network=False, on_first=first.append)
    assert first  # whole slices again: propagation gives a first result
    np.testing.assert_array_equal(done.propagation.painted, painted)
    assert done.sources == "propagation" and "grown into whole slices" in done.notes[0]
    assert "1 marked pixels on other slices are kept as marked" in done.notes[0]
    assert B not in np.unique(done.labels)  # the background label is written as 0
    marked = scrib != 0
    np.testing.assert_array_equal(done.labels[marked], np.where(scrib == B, 0, scrib)[marked])
    for z in painted:  # the strokes cover a fraction of their slices, the growth gives the rest back
        assert np.count_nonzero(scrib[z]) < 0.5 * scrib[z].size
        for c in (1, 2):
            p, g = done.labels[z] == c, labels[z] == c
            assert 2 * (p & g).sum() / (p.sum() + g.sum()) > 0.9
    unpainted = np.setdiff1d(np.arange(12), painted)
    for c in (1, 2):
        p, g = done.labels[unpainted] == c, labels[unpainted] == c
        assert 2 * (p & g).sum() / (p.sum() + g.sum()) > 0.8


def test_scribbles_on_sagittal_slices_only_are_completed_by_the_network_alone(tmp_path):
    image, labels = toy_volume(depth=12)
    scrib = _sagittal_scribbles(labels, [4, 9, 13, 17, 24, 27, 31, 36])
    first = []
    done = complete(image, scrib, config=tiny_config(warmup=10), background_label=B, on_first=first.append,
                    train=TrainConfig(steps=240, batch_size=6, lr=3e-3, device="cpu", amp=False),
                    model_out=tmp_path / "m.safetensors")  # fmt: skip
    assert first == []  # no whole slice: no propagated first result
    assert done.sources == "network" and "scribbles: the network alone" in done.notes[0]
    assert (tmp_path / "m.safetensors").exists() and done.network.pixels == np.count_nonzero(scrib)
    assert B not in np.unique(done.labels)
    marked = scrib != 0
    np.testing.assert_array_equal(done.labels[marked], np.where(scrib == B, 0, scrib)[marked])
    for c in (1, 2):  # the rows of axial slices that sagittal strokes label teach the 2D network the discs
        p, g = done.labels == c, labels == c
        assert 2 * (p & g).sum() / (p.sum() + g.sum()) > 0.7
    assert "network (240 steps)" in done.summary()


def test_bad_scribbles_and_no_network_are_refused_before_any_work(tmp_path):
    image, labels = toy_volume(depth=4)
    scrib = _scribbles(labels, [1])
    out = tmp_path / "m.safetensors"
    one = TrainConfig(steps=1, device="cpu")
    with pytest.raises(EngineError, match="can be completed by the network alone"):
        complete(image, _sagittal_scribbles(labels, [13, 27]), background_label=B, network=False, train=one)
    with pytest.raises(EngineError, match="no background mark"):
        complete(image, np.where(scrib == B, 0, scrib), background_label=B, model_out=out, train=one)
    with pytest.raises(EngineError, match="must be a positive label value"):
        complete(image, scrib, background_label=0, model_out=out, train=one)
    assert not out.exists()


def test_complete_from_init_refuses_a_class_the_model_lacks_before_propagating(tmp_path):
    image, labels = toy_volume(depth=6)
    painted = np.zeros_like(labels)
    painted[2] = labels[2]
    model = finetune(image, painted, config=tiny_config(), out=tmp_path / "m.safetensors",
                     train=TrainConfig(steps=1, batch_size=2, device="cpu", amp=False))  # fmt: skip
    painted[4, 3, 3] = 5
    first = []
    with pytest.raises(EngineError, match="label value 5, which the model does not know"):
        complete(image, painted, init=model.path, on_first=first.append, train=TrainConfig(steps=1, device="cpu"))
    assert first == []


def test_a_warm_started_correction_is_pooled_after_few_steps(tmp_path):
    from napari_smp.engine import completion

    image, labels = toy_volume(depth=10)
    painted = np.zeros_like(labels)
    painted[[2, 7]] = labels[[2, 7]]
    train = TrainConfig(steps=120, batch_size=6, lr=3e-3, device="cpu", amp=False)
    base = finetune(image, painted, config=tiny_config(warmup=10), train=train, out=tmp_path / "m.safetensors")
    painted[5] = labels[5]  # the correction
    few = TrainConfig(steps=10, batch_size=6, lr=1e-3, device="cpu", amp=False)
    assert few.step_cap < completion.MIN_NETWORK_STEPS
    done = complete(image, painted, init=base.path, train=few)
    assert done.network.warm and len(done.network.reports) == 10
    # fewer steps than a cold run needs, but it went on from a model that fits: pooled, not dropped
    assert max(done.network.answers.values()) >= completion.MIN_PAINTED_DICE
    assert done.sources == "propagation + network"
