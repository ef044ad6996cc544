"""Segment widget in a real viewer: new layer on the image's grid, user layers untouched, cancel, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from widget_helpers import NAMES, ORIGIN, SPACING, HeldWork, notifications, tiny_volume

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


def _hold_segmentation(monkeypatch, widget, at: int, **kw) -> HeldWork:
    """Run the widget's engine calls through a ``HeldWork`` held in its ``at``-th batch (0: at its start)."""
    held = HeldWork(at=at, **kw)
    held.install(monkeypatch, sys.modules[type(widget).__module__], "predict_job")
    return held


def test_cancel_frees_the_widget_at_once_and_stops_at_the_next_batch(make_napari_viewer, qtbot, tiny_checkpoint,
                                                                     monkeypatch):
    viewer = make_napari_viewer()
    image, _ = tiny_volume(depth=400)
    viewer.add_image(image, name="ct")
    w = _widget(viewer, tiny_checkpoint)
    w.batch_spin.setValue(1)
    held = _hold_segmentation(monkeypatch, w, at=2)  # the engine is held mid-run, after its second batch
    job = w.run()
    qtbot.waitUntil(held.held.is_set, timeout=20_000)
    w.cancel_button.click()
    # the widget is free at once: the click did not wait for the engine, which is still held in its thread
    assert w.run_button.isEnabled() and not w.cancel_button.isEnabled()
    assert job.running and job.outcome is None
    held.release()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=20_000)
    assert job.outcome.status == "cancelled"
    assert held.calls == 2  # the engine checked the cancel before its next batch: not one batch after it
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


def test_segmentation_runs_in_a_worker_while_the_viewer_keeps_running(make_napari_viewer, qtbot, tiny_checkpoint,
                                                                      tick_monitor, monkeypatch):
    viewer = make_napari_viewer()
    image, _ = tiny_volume(depth=60)
    viewer.add_image(image, name="ct")
    w = _widget(viewer, tiny_checkpoint)
    held = _hold_segmentation(monkeypatch, w, at=1)  # held after the first batch: the model is built and running
    tick_monitor.start()
    job = w.run()
    # the handler returned with the job under way, not after it
    assert job is not None and job.running and not w.run_button.isEnabled()
    qtbot.waitUntil(held.held.is_set, timeout=30_000)
    ticks = tick_monitor.ticks
    # the event loop goes on while the engine call is held in its thread
    qtbot.waitUntil(lambda: tick_monitor.ticks >= ticks + 5, timeout=30_000)
    assert job.running and w.result_layer is None
    held.release()
    qtbot.waitUntil(lambda: w.result_layer is not None, timeout=30_000)
    tick_monitor.stop()
    # the whole engine call, its start and every batch, ran in one thread that is not the main thread
    assert len(held.threads) == 1 and held.main not in held.threads
    assert held.calls == 30  # 60 slices in batches of 2, each reported
    assert w.result_layer.data.shape == (60, 32, 32)


def test_the_worker_names_the_classes_found_so_the_viewer_only_adds_the_layer(viewer_with_volume, qtbot,
                                                                             tiny_checkpoint):
    """The classes present are listed in the worker (np.unique over a CT is too slow for the viewer's thread)."""
    from napari_smp._widgets import segment

    viewer = viewer_with_volume
    w = _widget(viewer, tiny_checkpoint)
    seen: list[object] = []
    job = w.run()
    job.worker.returned.connect(lambda outcome: seen.append(outcome.value))  # what the worker handed over
    qtbot.waitUntil(lambda: w.result_layer is not None, timeout=20_000)
    (result,) = seen
    assert isinstance(result, segment.Segmentation)
    present = [NAMES[v] for v in np.unique(w.result_layer.data) if v]
    assert result.found == present  # worked out before the result reached the main thread
    assert w.status.text() == f"'ct segmentation': {', '.join(present) if present else 'nothing found'}"
