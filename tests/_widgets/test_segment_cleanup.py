"""The Segment widget's optional clean-up gives what the engine's clean_labels gives on the raw result."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import SPACING

pytestmark = pytest.mark.gui


def test_segment_cleanup_matches_the_engine(viewer_with_volume, qtbot, tiny_checkpoint):
    from napari_smp._widgets.segment import SegmentWidget
    from napari_smp.engine.cleanup import clean_labels

    viewer = viewer_with_volume
    w = SegmentWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.image_combo.set_layer("ct")
    w.device_combo.setCurrentText("cpu")
    w.model_picker.set_path(tiny_checkpoint)
    assert not w.largest_check.isChecked() and w.island_spin.value() == 0  # off by default
    results = []
    for largest, island in ((False, 0.0), (True, 0.01)):
        w.largest_check.setChecked(largest)
        w.island_spin.setValue(island)
        job = w.run()
        with qtbot.waitSignal(job.ended, timeout=60_000):
            pass
        assert job.outcome.status == "ok", job.outcome.message
        results.append(np.asarray(w.result_layer.data))
    raw, cleaned = results
    expected = clean_labels(raw, SPACING, largest_component=True, min_island_ml=0.01).labels
    np.testing.assert_array_equal(cleaned, expected)
