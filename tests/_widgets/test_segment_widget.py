"""Segment widget in a real viewer: new layer on the image's grid, user layers untouched, cancel, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from widget_helpers import NAMES, ORIGIN, SPACING, notifications, tiny_volume

from napari_smp.io.meta import META_KEY

pytestmark = pytest.mark.gui


def _widget(viewer, checkpoint=None):
    from napari_smp._widgets.segment import SegmentWidget

    w = SegmentWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.image_combo.set_layer("ct")
    w.device_combo.setCurrentText("cpu")
    if checkpoint is not None:
        w.model_picker.set_path(checkpoint)
    return w


def test_segment_adds_a_new_labels_layer_on_the_image_grid(viewer_with_volume, qtbot, tiny_checkpoint):
    viewer = viewer_with_volume
    before = {ly.name: np.array(ly.data, copy=True) for ly in viewer.layers}
    w = _widget(viewer, tiny_checkpoint)
    w.run_button.click()
    qtbot.waitUntil(lambda: w.result_layer is not None, timeout=20_000)
    out = w.result_layer
    assert out.name == "ct segmentation"
    assert out.data.shape == (6, 32, 32) and out.data.dtype == np.uint8
    assert set(np.unique(out.data)) <= {0, 1, 2}
    np.testing.assert_allclose(out.scale, SPACING)
    np.testing.assert_allclose(out.translate, ORIGIN)
    assert list(out.features["class"]) == NAMES
    assert out.metadata["class_names"] == dict(enumerate(NAMES))
    src_meta = viewer.layers["ct"].metadata[META_KEY]
    assert out.metadata[META_KEY].class_names == dict(enumerate(NAMES))
    np.testing.assert_array_equal(out.metadata[META_KEY].affine, src_meta.affine)
    assert src_meta.class_names is None  # the image's own metadata is not modified
    for name, data in before.items():  # the user's layers are untouched
        np.testing.assert_array_equal(viewer.layers[name].data, data)
    # a second run never overwrites: it adds a layer with a new name
    first = w.result_layer
    w.run_button.click()
    qtbot.waitUntil(lambda: w.result_layer is not first, timeout=20_000)
    assert w.result_layer.name == "ct segmentation (2)"
    np.testing.assert_array_equal(w.result_layer.data, first.data)
    assert w.run_button.isEnabled() and not w.cancel_button.isEnabled()


def test_segment_uses_the_model_fine_tuned_in_this_session(viewer_with_volume, qtbot, tiny_checkpoint):
    from napari_smp._widgets._session import SESSION
    from napari_smp.engine.checkpoint import load_checkpoint

    viewer = viewer_with_volume
    w = _widget(viewer)
    model, config = load_checkpoint(tiny_checkpoint)
    SESSION.add(tiny_checkpoint, model, config)
    assert w.model_picker.combo.currentText() == "tiny"  # the newest session model is chosen
    w.run()
    qtbot.waitUntil(lambda: w.result_layer is not None, timeout=20_000)
    assert w.result_layer.data.shape == (6, 32, 32)


def test_cancel_stops_segmentation_within_a_second(make_napari_viewer, qtbot, tiny_checkpoint):
    viewer = make_napari_viewer()
    image, _ = tiny_volume(depth=400)
    viewer.add_image(image, name="ct")
    w = _widget(viewer, tiny_checkpoint)
    w.batch_spin.setValue(1)
    progress: list[int] = []
    job = w.run()
    job.progressed.connect(lambda done, total: progress.append(done))
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=20_000)
    t0 = time.perf_counter()
    w.cancel_button.click()
    assert w.run_button.isEnabled() and not w.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=5_000)
    latency = time.perf_counter() - t0
    print(f"\nsegmentation cancel: thread ended after {1000 * latency:.0f} ms")
    assert job.outcome.status == "cancelled"
    assert latency < 1.0, f"cancel took {latency:.2f} s"
    assert progress[-1] < 400  # it really stopped early
    assert w.result_layer is None and [ly.name for ly in viewer.layers] == ["ct"]
    assert any("cancelled" in m for m in notifications("info"))


def test_bad_checkpoint_becomes_one_sentence_notification(viewer_with_volume, qtbot, tmp_path):
    viewer = viewer_with_volume
    n_layers = len(viewer.layers)
    w = _widget(viewer)
    w.model_picker.set_path(tmp_path / "missing.safetensors")
    assert w.run() is None
    assert any("does not exist" in m for m in notifications("error"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    w.model_picker.set_path(bad)
    job = w.run()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=10_000)
    assert job.outcome.status == "error" and "\n" not in job.outcome.message
    assert any(m.startswith("Segment failed:") for m in notifications("error"))
    assert len(viewer.layers) == n_layers and w.run_button.isEnabled()


def test_segmentation_keeps_the_viewer_responsive(make_napari_viewer, qtbot, tiny_checkpoint, tick_monitor):
    viewer = make_napari_viewer()
    image, _ = tiny_volume(depth=60)
    viewer.add_image(image, name="ct")
    w = _widget(viewer, tiny_checkpoint)
    tick_monitor.start()
    job = w.run()
    qtbot.waitUntil(lambda: w.result_layer is not None, timeout=30_000)
    total = tick_monitor.stop()
    gap = tick_monitor.longest_gap_until(job.work_ended_at)
    print(f"\nlongest event-loop gap: {1000 * gap:.0f} ms while segmenting 60 slices, "
          f"{1000 * total:.0f} ms including napari adding the result layer")
    assert gap < 0.2, f"the viewer froze for {gap:.3f} s"
