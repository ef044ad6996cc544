"""Slice completion without a network: optical-flow propagation, signed-distance interpolation, nearest copy.

Known answers on small synthetic volumes (a disc moving in z, a disc growing in z), the output contract
(shapes, dtypes, sums, painted slices exact, ``far``), cancel/progress, and one-line errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_smp.engine.errors import Cancelled, EngineError
from napari_smp.engine.inference import propagation as prop_module
from napari_smp.engine.inference.flow import ilk_flow, invert_flow, pyramid, warp_one_hot
from napari_smp.engine.inference.interpolation import painted_slices
from napari_smp.engine.inference.propagation import (
    FilledSlices,
    interpolate,
    nearest_copy,
    propagate,
)
from napari_smp.metrics import dice

Z, N = 11, 64


def _moving_disc(label: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A textured disc of radius 11 moving (+2, +1.5) pixels per slice: (image, labels), (Z, N, N)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:N, :N].astype(np.float32)
    texture = ndimage.gaussian_filter(rng.standard_normal((N + 40, N + 40)), 2.0) * 200
    image = np.zeros((Z, N, N), np.float32)
    labels = np.zeros((Z, N, N), np.uint8)
    for z in range(Z):
        cy, cx = 20 + 2.0 * z, 22 + 1.5 * z
        inside = np.hypot(yy - cy, xx - cx) < 11
        labels[z] = inside * label
        # the disc carries its own texture along, the background keeps another: flow is well posed
        moved = ndimage.shift(texture, (2.0 * z, 1.5 * z), order=1)[:N, :N]
        image[z] = np.where(inside, 400 + moved, 100 + 0.3 * texture[:N, :N])
    image += rng.normal(0, 5, image.shape).astype(np.float32)
    return ndimage.gaussian_filter(image, (0, 0.7, 0.7)), labels


def _paint(labels: np.ndarray, painted: list[int]) -> np.ndarray:
    mask = np.zeros(labels.shape[0], bool)
    mask[painted] = True
    return np.where(mask[:, None, None], labels, 0)


def _unpainted_dice(filled: FilledSlices, gt: np.ndarray, label: int = 1) -> float:
    keep = np.setdiff1d(np.arange(gt.shape[0]), filled.painted)
    return dice(filled.label_map()[keep], gt[keep], labels=[label])[label]


# ----------------------------------------------------------------------------------- known answers


def test_propagation_follows_a_moving_disc_where_nearest_copy_cannot():
    image, gt = _moving_disc()
    painted = [2, 8]
    sparse = _paint(gt, painted)
    prop = propagate(image, sparse, painted)
    near = nearest_copy(sparse, painted)
    assert _unpainted_dice(prop, gt) > 0.95
    assert _unpainted_dice(near, gt) < 0.85
    # beyond the painted range (one side only) the motion is followed too
    far = np.flatnonzero(prop.far)
    assert far.tolist() == [0, 1, 9, 10]
    assert dice(prop.label_map()[far], gt[far], labels=[1])[1] > 0.9


@pytest.mark.parametrize("kwargs", [{"flow": "tvl1"}, {"blend": "distance"}, {"reuse_flow": False}, {"grid": 32}])
def test_propagation_variants_follow_the_disc(kwargs):
    image, gt = _moving_disc()
    filled = propagate(image, _paint(gt, [2, 8]), [2, 8], **kwargs)
    assert _unpainted_dice(filled, gt) > 0.9


def test_interpolation_of_a_growing_disc_gives_the_in_between_radius():
    yy, xx = np.mgrid[:N, :N]
    r = np.hypot(yy - 31.5, xx - 31.5)
    gt = np.stack([(r < 8 + 2 * z) * 3 for z in range(9)]).astype(np.uint8)  # radius 8 .. 24
    filled = interpolate(_paint(gt, [0, 8]), [0, 8])
    out = filled.label_map()
    for z in range(1, 8):
        assert dice(out[z], gt[z], labels=[3])[3] > 0.97, z
    # the middle slice's area is that of the radius halfway between (16), not the mean of the areas
    assert abs((out[4] == 3).sum() - np.pi * 16**2) < 0.03 * np.pi * 16**2


@pytest.mark.parametrize("other", ["empty", "another class"])
def test_interpolation_shrinks_a_class_painted_on_one_side_only_to_nothing_by_halfway(other):
    yy, xx = np.mgrid[:N, :N]
    gt = np.zeros((9, N, N), np.uint8)
    gt[0] = np.hypot(yy - 31.5, xx - 31.5) < 12
    if other == "another class":
        gt[8, 0, 0] = 2  # slice 8 painted with another class, class 1 absent there
    out = interpolate(gt, [0, 8]).label_map()  # "empty": slice 8 listed as painted, all background
    area = [int((out[z] == 1).sum()) for z in range(9)]
    assert area[0] > area[1] > 0
    assert area == sorted(area, reverse=True)
    assert area[4:] == [0] * 5


def test_nearest_copy_copies_the_nearest_painted_slice_ties_below():
    labels = np.zeros((7, 4, 4), np.uint8)
    labels[1, 0, 0] = 1
    labels[5, 3, 3] = 2
    out = nearest_copy(labels).label_map()
    for z, src in [(0, 1), (2, 1), (3, 1), (4, 5), (6, 5)]:
        np.testing.assert_array_equal(out[z], labels[src])


# ----------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("method", ["propagate", "interpolate", "nearest"])
def test_output_contract(method):
    image, gt = _moving_disc(label=52)
    gt[:, :3, :3] = 7  # a second class, user values kept
    painted = [3, 7]
    sparse = _paint(gt, painted)
    if method == "propagate":
        filled = propagate(image, sparse, painted)
    elif method == "interpolate":
        filled = interpolate(sparse, painted)
    else:
        filled = nearest_copy(sparse, painted)
    prob = filled.probabilities
    assert prob.shape == (3, Z, N, N) and prob.dtype == np.float32
    assert filled.classes.tolist() == [0, 7, 52]
    np.testing.assert_allclose(prob.sum(axis=0), 1.0, atol=1e-5)
    assert prob.min() >= -1e-6 and prob.max() <= 1 + 1e-6
    for z in painted:  # painted slices come back exactly, one-hot
        assert set(np.unique(prob[:, z]).tolist()) <= {0.0, 1.0}
        np.testing.assert_array_equal(filled.label_map()[z], gt[z])
    assert filled.label_map().dtype == np.uint8
    assert filled.far.tolist() == [z < 3 or z > 7 for z in range(Z)]
    assert filled.distance.tolist() == [3, 2, 1, 0, 1, 2, 1, 0, 1, 2, 3]
    assert filled.painted.tolist() == painted


def test_label_values_above_255_come_back_as_uint16():
    labels = np.zeros((3, 8, 8), np.uint16)
    labels[1, 2:5, 2:5] = 300
    out = nearest_copy(labels).label_map()
    assert out.dtype == np.uint16 and out[0, 3, 3] == 300


def test_an_explicit_background_slice_stops_the_painting_and_costs_no_flow(monkeypatch):
    image, gt = _moving_disc()
    sparse = _paint(gt, [4])
    calls = []
    real = prop_module.ilk_flow
    monkeypatch.setattr(prop_module, "ilk_flow", lambda *a, **k: calls.append(1) or real(*a, **k))
    filled = propagate(image, sparse, [4, 10], blend="distance")
    out = filled.label_map()
    assert not out[10].any()  # painted as background: stays background
    assert out[5].any()
    # slices 5..9 between the disc and the empty slice: only the disc side's chain (5 flows) and the
    # chain below slice 4 (4 flows); the background side carries background without any flow
    assert len(calls) == 4 + 5


def test_painted_accepts_a_mask_and_infers_from_labels():
    labels = np.zeros((5, 4, 4), np.uint8)
    labels[1, 0, 0] = 1
    np.testing.assert_array_equal(painted_slices(labels), [1])
    np.testing.assert_array_equal(painted_slices(labels, np.array([0, 1, 0, 1, 0], bool)), [1, 3])
    np.testing.assert_array_equal(painted_slices(labels, [3, 1, 3]), [1, 3])


# ----------------------------------------------------------------------------------- progress, cancel


def test_progress_counts_every_slice_pair_and_cancel_stops():
    image, gt = _moving_disc()
    sparse = _paint(gt, [2, 8])
    seen: list[tuple[int, int]] = []
    propagate(image, sparse, [2, 8], progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (Z - 1, Z - 1)  # every consecutive pair once
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(Cancelled):
        propagate(image, sparse, [2, 8], cancel=cancel)
    assert len(polls) == 4  # stopped at the first poll that said so


# ----------------------------------------------------------------------------------- pieces


def test_closed_form_ilk_matches_scikit_image():
    from skimage.registration import optical_flow_ilk

    image, _ = _moving_disc()
    a, b = (image[4:6] - image.min()) / np.ptp(image)
    ours = ilk_flow(pyramid(b), pyramid(a), radius=4)
    ref = optical_flow_ilk(b, a, radius=4, dtype=np.float32)
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_inverse_flow_undoes_a_smooth_flow():
    base = np.mgrid[0:40, 0:40].astype(np.float32)
    yy, xx = base
    flow = np.stack([2 * np.sin(xx / 9), 1.5 * np.cos(yy / 11)]).astype(np.float32)
    inv = invert_flow(flow, base)
    # following the inverse, then the flow, comes back: g(y) + f(y + g(y)) = 0
    back = inv + np.stack([ndimage.map_coordinates(c, base + inv, order=1, mode="nearest") for c in flow])
    assert np.abs(back[:, 5:-5, 5:-5]).max() < 0.05


def test_one_hot_warp_is_bilinear_and_sums_to_one():
    compact = np.zeros((4, 4), np.uint8)
    compact[:, 2:] = 1
    coords = np.mgrid[0:4, 0:4].astype(np.float32)
    coords[1] += 0.25  # a quarter pixel to the right
    out = warp_one_hot(compact, 2, coords)
    np.testing.assert_allclose(out.sum(0), 1.0)
    np.testing.assert_allclose(out[1, 0], [0, 0.25, 1, 1])


# ----------------------------------------------------------------------------------- bad input


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def test_no_painted_slice_is_refused_in_one_sentence():
    empty = np.zeros((4, 8, 8), np.uint8)
    calls = (lambda: propagate(np.zeros((4, 8, 8)), empty), lambda: interpolate(empty), lambda: nearest_copy(empty))
    for call in calls:
        with pytest.raises(ValueError) as err:
            call()
        assert "no painted slice" in _one_line(err)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.zeros((4, 8, 9), np.uint8)}, "shape"),
        ({"painted": [7]}, "outside"),
        ({"painted": np.ones(3, bool)}, "mask"),
        ({"flow": "farneback"}, "unknown flow"),
        ({"blend": "max"}, "unknown blend"),
        ({"grid": 4}, "grid"),
        ({"flow_options": {"radiuss": 3}}, "unknown ILK"),
        ({"image": np.zeros((4, 8))}, "3D"),
        ({"labels": np.full((4, 8, 8), -1)}, "negative"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(kwargs, match):
    positional = {"image": np.zeros((4, 8, 8), np.float32), "labels": np.ones((4, 8, 8), np.uint8), "painted": None}
    options = {k: v for k, v in kwargs.items() if k not in positional}
    positional.update({k: v for k, v in kwargs.items() if k in positional})
    with pytest.raises(EngineError, match=match) as err:
        propagate(positional["image"], positional["labels"], positional["painted"], **options)
    _one_line(err)


def test_a_correction_reuses_the_stretches_it_did_not_touch_and_equals_a_fresh_run(monkeypatch):
    """propagate(previous=...) copies every stretch whose painted neighbours are unchanged; the rest is
    propagated again; the whole is what a fresh run gives, and no flow is estimated in a copied stretch."""
    image, gt = _moving_disc()
    before = propagate(image, _paint(gt, [2, 5, 9]), [2, 5, 9])
    painted = [2, 5, 7, 9]  # one more slice inside the gap (5, 9)
    fresh = propagate(image, _paint(gt, painted), painted)
    estimated: list[tuple[int, int]] = []
    real = prop_module._Run._estimate

    def counting(self, target, source):
        estimated.append((target, source))
        return real(self, target, source)

    monkeypatch.setattr(prop_module._Run, "_estimate", counting)
    again = propagate(image, _paint(gt, painted), painted, previous=before)
    np.testing.assert_array_equal(again.probabilities, fresh.probabilities)
    # reused: below 2, the gap 2..5 and above 9; the gaps 5..7 and 7..9 are new
    np.testing.assert_array_equal(np.flatnonzero(again.reused), [0, 1, 3, 4, 10])
    assert fresh.reused is None
    assert {t for t, s in estimated} <= {6, 7, 8}  # flows only where the correction is
    # slice 5 painted differently: the stretches on both sides of it are propagated again, 7..9 is not
    changed = _paint(gt, painted)
    changed[5] = np.roll(changed[5], 3, axis=1)
    redo = propagate(image, changed, painted, previous=fresh)
    np.testing.assert_array_equal(np.flatnonzero(redo.reused), [0, 1, 8, 10])  # 3, 4 and 6 again
    # a class painted for the first time (on slice 7): the stretches away from it are still reused, with the
    # new class at 0 there, and the whole equals a fresh run
    other = _paint(gt, painted)
    other[7][other[7] == 1] = 2
    grown = propagate(image, other, painted, previous=fresh)
    np.testing.assert_array_equal(np.flatnonzero(grown.reused), [0, 1, 3, 4, 10])
    np.testing.assert_array_equal(grown.probabilities, propagate(image, other, painted).probabilities)
    # a class no longer painted anywhere: nothing reused (the old stretches would still carry it)
    assert propagate(image, np.where(other == 1, 0, other), painted, previous=grown).reused is None
