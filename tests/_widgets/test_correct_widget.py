"""Correct widget in a real viewer: an existing segmentation and repainted slices -> a new layer."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import NAMES, SPACING, notifications

pytestmark = pytest.mark.gui


def _widget(viewer, segmentation: str, corrections: str):
    from napari_smp._widgets.correct import CorrectWidget

    w = CorrectWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.image_combo.set_layer("ct")
    w.segmentation_combo.set_layer(segmentation)
    w.corrections_combo.set_layer(corrections)
    return w


def test_a_repainted_slice_is_carried_through_the_segmentation_into_a_new_layer(viewer_with_volume, qtbot):
    viewer = viewer_with_volume
    truth = np.array(viewer.layers["ground truth"].data)
    tool = truth.copy()
    tool[1:5][tool[1:5] == 2] = 0  # another tool missed the disc on slices 1-4
    viewer.add_labels(tool, name="tool", scale=SPACING, metadata={"class_names": dict(enumerate(NAMES))})
    viewer.layers["tool"].translate = viewer.layers["ct"].translate
    fix = np.zeros_like(truth)
    fix[3] = truth[3]
    viewer.add_labels(fix, name="my fixes", scale=SPACING, translate=viewer.layers["ct"].translate)
    before = {ly.name: np.array(ly.data, copy=True) for ly in viewer.layers}
    w = _widget(viewer, "tool", "my fixes")
    assert w.run() is not None
    qtbot.waitUntil(lambda: w.result_layer is not None, timeout=30_000)
    out = w.result_layer
    assert out.name == "tool corrected" and "1 corrected slice" in w.status.text()
    for z in range(1, 5):  # the disc is back on every slice that missed it
        got, want = out.data[z] == 2, truth[z] == 2
        assert 2 * (got & want).sum() / (got.sum() + want.sum()) > 0.85
    assert out.metadata["class_names"] == dict(enumerate(NAMES))
    for name, data in before.items():  # the user's layers are untouched
        np.testing.assert_array_equal(viewer.layers[name].data, data)


def test_the_same_layer_twice_or_nothing_corrected_is_one_sentence(viewer_with_volume, qtbot):
    viewer = viewer_with_volume
    n = len(viewer.layers)
    w = _widget(viewer, "ground truth", "ground truth")
    assert w.run() is None and "another layer than the segmentation" in w.status.text()
    viewer.add_labels(np.array(viewer.layers["ground truth"].data), name="copy", scale=SPACING,
                      translate=viewer.layers["ct"].translate)  # fmt: skip
    w.corrections_combo.set_layer("copy")
    job = w.run()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=10_000)
    assert job.outcome.status == "error" and "corrects nothing" in job.outcome.message
    assert any("corrects nothing" in m for m in notifications("error"))
    assert len(viewer.layers) == n + 1 and w.result_layer is None
