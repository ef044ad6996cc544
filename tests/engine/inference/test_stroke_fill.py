"""Strokes grown into whole axial slices (marker-controlled watershed) and which slices qualify."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_smp.engine.inference.stroke_fill import fill_scribbled, fill_strokes, scribbled_slices

B = 9  # the background strokes' label


def _two_organs(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image, truth): a bright disc (1) and a darker ellipse (2) touching it, in a noisy body."""
    yy, xx = np.mgrid[:size, :size]
    truth = np.zeros((size, size), np.uint8)
    truth[(yy - 32) ** 2 + (xx - 22) ** 2 < 12**2] = 1
    truth[((yy - 32) / 14.0) ** 2 + ((xx - 44) / 9.0) ** 2 < 1] = 2
    body = (yy - 32) ** 2 + (xx - 32) ** 2 < 29**2
    image = np.where(body, 40.0, -1000.0) + np.select([truth == 1, truth == 2], [160.0, 90.0], 0.0)
    image += np.random.default_rng(seed).normal(0, 6, image.shape)
    return image.astype(np.float32), truth


def _strokes(truth: np.ndarray) -> np.ndarray:
    """A short line in the middle of each organ and one background line across the body's edge."""
    marks = np.zeros_like(truth)
    marks[30:35, 22] = 1
    marks[28:37, 44] = 2
    marks[6, 10:54] = np.where(truth[6, 10:54] == 0, B, 0)
    return marks


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_a_few_strokes_grow_into_the_organs_they_lie_in():
    image, truth = _two_organs()
    marks = _strokes(truth)
    assert np.count_nonzero(marks) < 0.02 * marks.size  # 2 % of the slice marked
    grown = fill_strokes(image, marks, B)
    assert grown.dtype == marks.dtype and B not in np.unique(grown)
    for c in (1, 2):  # the floods meet at the organs' edges, far from every stroke
        assert _dice(grown == c, truth == c) > 0.9
    kept = marks != 0
    np.testing.assert_array_equal(grown[kept], np.where(marks == B, 0, marks)[kept])


def test_only_slices_with_their_own_background_and_structure_strokes_are_filled():
    image2d, truth = _two_organs()
    image = np.stack([image2d] * 6)
    painting = np.zeros((6, *truth.shape), np.uint8)
    painting[1] = _strokes(truth)  # both kinds: filled
    painting[3] = np.where(_strokes(truth) == B, B, 0)  # background only: says nothing of the organs
    painting[4, 30:34, 22] = 1  # a structure only: nothing marks where it ends
    # a stroke drawn on a sagittal slice (x = 40) through slice 5 and 4: one column of each, not their own
    painting[4:6, 20:40, 40] = np.where(truth[20:40, 40] == 2, 2, B)
    np.testing.assert_array_equal(scribbled_slices(painting, B), [1])
    filled, slices = fill_scribbled(image, painting, B)
    np.testing.assert_array_equal(slices, [1])
    assert filled[[0, 2, 3, 4, 5]].max() == 0
    assert _dice(filled[1] == 1, truth == 1) > 0.9


def test_a_coronal_stroke_drawn_left_to_right_is_not_a_slice_of_its_own():
    painting = np.zeros((3, 20, 20), np.uint8)
    painting[1, 10, 2:8] = B  # one axial row: bakground then a structure, as a coronal stroke leaves it
    painting[1, 10, 8:14] = 1
    assert scribbled_slices(painting, B).size == 0
    painting[1, 4:7, 3] = B  # the same slice with an axial stroke that spreads over the rows
    np.testing.assert_array_equal(scribbled_slices(painting, B), [1])


def test_filled_slices_ignore_the_air_and_bone_edges_of_the_image():
    """The gradient is of the image clipped to the organs' range: a strong edge elsewhere (a bright bone
    ring inside organ 1) does not stop organ 1's flood before the faint edge it shares with organ 2."""
    image, truth = _two_organs()
    ring = ndimage.binary_dilation(truth == 1, iterations=1) & ~ndimage.binary_erosion(truth == 1, iterations=3)
    inner = ndimage.binary_erosion(truth == 1, iterations=6) & ~ndimage.binary_erosion(truth == 1, iterations=8)
    image = image + np.where(inner & ~ring, 1500.0, 0.0).astype(np.float32)  # bone far brighter than any organ
    grown = fill_strokes(image, _strokes(truth), B)
    assert _dice(grown == 1, truth == 1) > 0.85
