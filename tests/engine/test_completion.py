"""``complete``: a painting -> the whole volume, from propagation and the network (engine/completion.py)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import tiny_config, toy_volume

from napari_smp.config import TrainConfig
from napari_smp.engine import completion
from napari_smp.engine.completion import complete, pool
from napari_smp.engine.errors import Cancelled, EngineError
from napari_smp.metrics import dice


def _painting(labels: np.ndarray, painted: list[int]) -> np.ndarray:
    out = np.zeros_like(labels)
    out[painted] = labels[painted]
    return out


def test_pooling_is_a_weighted_geometric_mean():
    p = np.array([[0.9, 0.4], [0.1, 0.6]])  # (C=2, 2 voxels)
    q = np.array([[0.2, 0.7], [0.8, 0.3]])
    assert pool(p, q, 0.0).tolist() == [0, 1]  # propagation alone
    assert pool(p, q, 1.0).tolist() == [1, 0]  # the network alone
    # in between the surer source wins: voxel 0, 0.9 vs 0.8 -> class 0; voxel 1, 0.6 vs 0.7 -> class 0
    assert pool(p, q, 0.5).tolist() == [0, 0]


def test_propagation_alone_fills_the_volume_and_keeps_the_painting():
    image, labels = toy_volume(depth=12)
    painting = _painting(labels, [2, 9])
    firsts = []
    done = complete(image, painting, network=False, on_first=firsts.append)
    assert done.sources == "propagation" and done.network is None
    np.testing.assert_array_equal(done.labels[[2, 9]], labels[[2, 9]])  # painted slices as painted
    # the plain propagation is shown at once, then (when the intensities changed it) the refined map
    from napari_smp.engine.inference.propagation import propagate

    np.testing.assert_array_equal(firsts[0], propagate(image, painting, [2, 9]).label_map())
    assert firsts[-1] is done.labels and len(firsts) == (2 if done.evidence.choice.changes else 1)
    unpainted = [z for z in range(12) if z not in (2, 9)]
    score = dice(done.labels[unpainted], labels[unpainted], labels=[1, 2]).nanmean()
    assert score > 0.9  # two drifting discs, carried along the image
    assert "propagation" in done.seconds
    assert done.suggestion is not None and done.suggestion.slice not in (2, 9)  # where to paint next


def test_a_network_that_learnt_too_little_is_left_out_and_said(monkeypatch):
    image, labels = toy_volume(depth=8)
    train = TrainConfig(steps=2, batch_size=2, device="cpu", amp=False)
    done = complete(image, _painting(labels, [2, 5]), config=tiny_config(), train=train)
    assert done.sources == "propagation" and len(done.network.reports) == 2
    assert any("only 2 steps" in note for note in done.notes)


def test_a_network_that_learnt_is_pooled(monkeypatch):
    monkeypatch.setattr(completion, "MIN_NETWORK_STEPS", 1)
    monkeypatch.setattr(completion, "MIN_PAINTED_DICE", 0.0)
    image, labels = toy_volume(depth=8)
    train = TrainConfig(steps=3, batch_size=2, device="cpu", amp=False)
    painting = _painting(labels, [2, 5])
    done = complete(image, painting, config=tiny_config(), train=train)
    assert done.sources == "propagation + network" and "prediction" in done.seconds
    np.testing.assert_array_equal(done.labels[[2, 5]], labels[[2, 5]])
    assert set(np.unique(done.labels).tolist()) <= {0, 1, 2}


def test_bad_input_and_cancel():
    image, labels = toy_volume(depth=6)
    with pytest.raises(EngineError, match="no painted slice"):
        complete(image, np.zeros_like(labels), network=False)
    with pytest.raises(EngineError, match="shape"):
        complete(image, labels[:, :10], network=False)
    with pytest.raises(EngineError, match="network_weight"):
        complete(image, _painting(labels, [1]), network_weight=2.0)
    with pytest.raises(Cancelled):
        complete(image, _painting(labels, [1, 4]), network=False, cancel=lambda: True)


def test_a_correction_keeps_what_it_did_not_touch_and_calibrates_nothing(monkeypatch):
    """complete(previous=...): the stretches away from the new slice come from the last result as they were,
    and the intensity strength the painting chose is kept (calibration, the slow part, is not run)."""
    image, labels = toy_volume(depth=12)
    first = complete(image, _painting(labels, [2, 9]), network=False)
    assert first.evidence is not None

    def no_calibration(*args, **kwargs):
        raise AssertionError("a correction must not calibrate again")

    monkeypatch.setattr(completion, "calibrate", no_calibration)
    again = complete(image, _painting(labels, [2, 6, 9]), network=False, previous=first)
    assert again.evidence is first.evidence
    np.testing.assert_array_equal(np.flatnonzero(again.propagation.reused), [0, 1, 10, 11])
    np.testing.assert_array_equal(again.labels[[0, 1, 10, 11]], first.labels[[0, 1, 10, 11]])
    np.testing.assert_array_equal(again.labels[[2, 6, 9]], labels[[2, 6, 9]])  # painted slices as painted
    # a result made without the intensity evidence is not mixed into one made with it
    plain = complete(image, _painting(labels, [2, 9]), network=False, evidence=False)
    monkeypatch.undo()
    fresh = complete(image, _painting(labels, [2, 6, 9]), network=False, previous=plain)
    assert fresh.propagation.reused is None


def test_where_the_image_says_nothing_the_interpolated_shape_fills_the_gaps():
    # a disc growing 1.5 px a slice in contrast-free noise: optical flow has nothing to follow, the
    # intensities tell nothing, signed-distance interpolation between painted slices is exact
    depth, size = 13, 48
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((depth, size, size), np.uint8)
    for z in range(depth):
        labels[z][(yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (5 + 1.5 * z) ** 2] = 1
    image = np.random.default_rng(3).normal(0, 20, labels.shape).astype(np.float32)
    painted = [0, 4, 8, 12]
    done = complete(image, _painting(labels, painted), network=False)
    assert done.evidence.choice.shape > 0
    assert "interpolated shape" in done.summary()
    unpainted = [z for z in range(depth) if z not in painted]
    from napari_smp.engine.inference.propagation import propagate

    alone = propagate(image, _painting(labels, painted), painted).label_map()
    ours, theirs = (dice(m[unpainted], labels[unpainted], labels=[1])[1] for m in (done.labels, alone))
    assert ours > theirs + 0.02


def test_one_painted_slice_with_structures_gives_the_network_no_share(monkeypatch, tmp_path):
    from napari_smp.engine.completion import NETWORK_WEIGHT, ONE_SLICE_WEIGHT, network_share

    monkeypatch.setattr(completion, "MIN_NETWORK_STEPS", 1)
    monkeypatch.setattr(completion, "MIN_PAINTED_DICE", 0.0)
    image, labels = toy_volume(depth=8)
    painting = _painting(labels, [3])  # slices 0 and 7 are listed as painted background below
    assert network_share(painting, np.array([0, 3, 7])) == ONE_SLICE_WEIGHT == 0.0
    assert network_share(_painting(labels, [2, 5]), np.array([2, 5])) == NETWORK_WEIGHT
    train = TrainConfig(steps=3, batch_size=2, device="cpu", amp=False)
    alone = complete(image, painting, config=tiny_config(), train=train, slices=[0, 7])
    # nothing would use the network: no training, the propagated result at once, and why
    assert alone.sources == "propagation" and alone.network is None and "fine-tune" not in alone.seconds
    assert any("one painted slice" in note for note in alone.notes)
    # a model asked for is trained and saved (a correction goes on from it), but not pooled
    out = tmp_path / "one.safetensors"
    kept = complete(image, painting, config=tiny_config(), train=train, slices=[0, 7], model_out=out)
    assert kept.sources == "propagation" and len(kept.network.reports) == 3 and out.exists()
    np.testing.assert_array_equal(kept.labels, alone.labels)
    assert any("saved" in note for note in kept.notes)
    # a share asked for explicitly is used
    pooled = complete(image, painting, config=tiny_config(), train=train, slices=[0, 7], network_weight=0.5)
    assert pooled.sources == "propagation + network"
    # and a share of 0 asked for with two slices says so, not "one painted slice"
    off = complete(image, _painting(labels, [2, 5]), config=tiny_config(), train=train, network_weight=0.0)
    assert off.network is None and off.notes == ["network_weight 0: the network is not pooled"]
