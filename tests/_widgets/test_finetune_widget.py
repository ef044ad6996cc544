"""Fine-tune widget in a real viewer: the painted-labels picker, painted-slice summary, live plot, save, the
volume filled (propagation first, then the network), honest names for weak results, cancel, close."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import ndimage
from widget_helpers import ORIGIN, SPACING, HeldWork, notifications, tiny_config, tiny_train

pytestmark = pytest.mark.gui


def _widget(viewer, tmp_path, steps=6, fill=False, proxied=False):
    from napari.utils._proxies import PublicOnlyProxy

    from napari_smp._widgets.finetune import FinetuneWidget

    # proxied: as the Plugins menu builds it, with a proxy of the viewer that proxies every layer it hands out
    w = FinetuneWidget(PublicOnlyProxy(viewer) if proxied else viewer)
    viewer.window.add_dock_widget(w)
    w.image_combo.set_layer("ct")
    w.labels_combo.set_layer("annotation")
    w.model_config_override = tiny_config()
    w.memory_check.setChecked(True)  # these runs show the bank's K curve (lite's default is without it)
    w.train_config_override = tiny_train()
    w.device_combo.setCurrentText("cpu")
    w.steps_spin.setValue(steps)
    w.budget_spin.setValue(0)
    w.save_edit.setText(str(tmp_path / "model.safetensors"))
    w.fill_check.setChecked(fill)  # most tests here are about the fine-tune; the filled volume has its own
    return w


def test_summary_follows_painting_cheaply(viewer_with_volume, qtbot, tmp_path):
    w = _widget(viewer_with_volume, tmp_path)
    assert w.summary.slices == [1, 4] and w.summary.classes == [1, 2]
    assert w.summary_label.text().startswith("2 slices annotated (1, 4)")
    layer = viewer_with_volume.layers["annotation"]
    # a brush stroke the way napari records it: one history item, then the paint event
    layer.paint((2, 16, 16), 2)
    qtbot.waitUntil(lambda: w.summary.slices == [1, 2, 4], timeout=2_000)
    # undo and redo emit no paint event; the line must still follow them
    layer.undo()
    qtbot.waitUntil(lambda: w.summary.slices == [1, 4], timeout=2_000)
    assert w.summary_label.text().startswith("2 slices annotated (1, 4)")
    layer.redo()
    qtbot.waitUntil(lambda: w.summary.slices == [1, 2, 4], timeout=2_000)
    # moving through the volume is not an edit: no full recount
    summary = w.summary
    viewer_with_volume.dims.set_current_step(0, 3)
    qtbot.wait(300)
    assert w.summary is summary and w.summary.slices == [1, 2, 4]
    # undo a stroke on a slice the viewer does not show (slice 2, viewing 3), then redo it
    layer.undo()
    qtbot.waitUntil(lambda: w.summary.slices == [1, 4], timeout=2_000)
    layer.redo()
    qtbot.waitUntil(lambda: w.summary.slices == [1, 2, 4], timeout=2_000)
    # a new class painted on slice 1, then undone: the classes follow, the slices do not move
    layer.selected_label = 3
    layer.paint((1, 16, 16), 3)
    qtbot.waitUntil(lambda: w.summary.classes == [1, 2, 3], timeout=2_000)
    layer.undo()
    qtbot.waitUntil(lambda: w.summary.classes == [1, 2], timeout=2_000)
    assert w.summary.slices == [1, 2, 4] and "class 3" not in w.summary_label.text()
    assert w.summary is summary  # all of it without a full recount
    w.labels_combo.set_layer("ground truth")  # names come from the layer's metadata
    qtbot.waitUntil(lambda: "6 slices annotated" in w.summary_label.text(), timeout=2_000)
    assert w.summary_label.text().endswith("liver, spleen")


def test_finetune_end_to_end_runs_in_a_worker_while_the_viewer_keeps_running(viewer_with_volume, qtbot, tmp_path,
                                                                             tick_monitor, monkeypatch):
    from napari_smp._widgets._session import SESSION
    from napari_smp.engine.checkpoint import load_checkpoint, read_checkpoint_info
    from napari_smp.engine.training.answer import ANSWERS

    viewer = viewer_with_volume
    annotation = viewer.layers["annotation"]
    painting = annotation.data.copy()
    w = _widget(viewer, tmp_path, fill=True)
    w.k_spin.setValue(4)
    w.k_policy_combo.setCurrentText("clamp")
    held = HeldWork(at=1)  # the first run is held once it has reported its propagated labels
    held.install(monkeypatch, sys.modules[type(w).__module__], "finetune_work")  # the work Start runs
    tick_monitor.start()
    job = w.start()
    # the handler returned with the job under way, not after it
    assert job is not None and job.running and not w.run_button.isEnabled()
    qtbot.waitUntil(held.held.is_set, timeout=60_000)
    # the propagated result is on screen before the network has trained a single step
    first_name = "ct completion (propagated; training...)"
    qtbot.waitUntil(lambda: first_name in viewer.layers, timeout=10_000)
    first = viewer.layers[first_name]
    assert w.plot.steps == [] and "fine-tuning the network on 2 slices" in w.status.text()
    np.testing.assert_array_equal(first.data[[1, 4]], painting[[1, 4]])  # painted slices as painted
    assert all(first.data[z].any() for z in range(6))  # every other slice filled
    # painting goes on during training: the run uses the snapshot taken at Start
    annotation.paint((3, 20, 20), 1)
    ticks = tick_monitor.ticks
    # the event loop goes on while the engine call is held in its thread
    qtbot.waitUntil(lambda: tick_monitor.ticks >= ticks + 5, timeout=30_000)
    assert job.running and w.last_result is None
    held.release()
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=60_000)
    tick_monitor.stop()
    # training, saving and segmenting all ran in one thread that is not the main thread
    assert len(held.threads) == 1 and held.main not in held.threads
    res = w.last_result
    assert res.train.slices.tolist() == [1, 4]  # slice 3 was painted after Start
    assert len(res.train.reports) == 6 and res.train.stopped == "steps"
    assert res.train.config.memory.k_policy == "clamp" and res.train.config.memory.k_init == 4
    assert w.plot.steps == [1, 2, 3, 4, 5, 6] and w.plot.draws >= 1
    assert w.plot.ks[0] == 4
    assert res.path == tmp_path / "model.safetensors" and res.path.is_file()
    assert read_checkpoint_info(res.path)["num_classes"] in (3, "3")
    assert SESSION.names() == ["model"]
    kept = res.train.config.lite_prediction  # the answer scored best on the painted slices, and said so
    # a filled volume keeps the answer in the status's tooltip
    assert f"the model answers with its {ANSWERS[kept]}" in w.status.toolTip(), w.status.toolTip()
    assert load_checkpoint(res.path)[1].lite_prediction == kept
    # 6 steps are too few to trust the network: the same layer keeps propagation alone, and says so
    seg = w.result_layer
    assert seg is first and seg.name == "ct completion (propagation only)" and seg.data.shape == (6, 32, 32)
    assert res.completion.sources == "propagation"
    np.testing.assert_array_equal(seg.data, res.completion.labels)
    np.testing.assert_allclose(seg.scale, SPACING)
    np.testing.assert_allclose(seg.translate, ORIGIN)
    assert seg.metadata["class_names"] == {0: "background", 1: "class 1", 2: "class 2"}
    assert w.status.text().startswith("\u26a0 propagation only"), w.status.text()
    assert "trained only 6 steps" in w.status.text()
    assert "\npropagation: 4 slices filled from 2 painted in " in w.status.text()
    assert any("'ct completion (propagation only)': propagation only" in m and "trained only 6 steps" in m
               for m in notifications("warning"))
    # the new model is picked as the next start, and a checkpoint's settings are greyed out
    assert w.start_picker.combo.currentText() == "model"
    assert not w.size_spin.isEnabled() and not w.k_spin.isEnabled()
    w.start_picker.select("new lite model")
    assert w.size_spin.isEnabled() and w.k_spin.isEnabled()
    # the same path again: never overwritten, saved beside it and said so; this time at a 64 px input
    w.fill_check.setChecked(False)  # the network alone: a model, no layer
    layers = [ly.name for ly in viewer.layers]
    w.steps_spin.setValue(2)
    w.size_spin.setValue(64)
    w.memory_check.setChecked(False)  # the plain network: no K curve
    viewer.dims.set_current_step(0, 2)  # an unpainted slice, added as background from the viewer
    w.add_current_slice()
    w.add_current_slice()  # once only
    assert w.background_edit.text() == "2"
    w.start()
    qtbot.waitUntil(lambda: w.last_result is not res, timeout=60_000)
    assert w.last_result.path == tmp_path / "model-2.safetensors"
    assert w.last_result.train.config.img_size == 64 and res.train.config.img_size == 32
    assert w.last_result.train.slices.tolist() == [1, 2, 3, 4]  # 3 was painted during the first run
    assert not w.last_result.train.config.use_memory and w.last_result.train.model.memory_modules() == []
    assert w.plot.ks == [] and w.plot.k_hidden and ", K " not in w.status.text()
    kept = w.last_result.train.config.lite_prediction  # a model alone says its answer in the status itself
    assert f"the model answers with its {ANSWERS[kept]}" in w.status.text(), w.status.text()
    assert any("model-2.safetensors" in m for m in notifications("info"))
    assert SESSION.names() == ["model", "model-2"]
    assert [ly.name for ly in viewer.layers] == layers


def test_cancel_frees_the_widget_at_once_stops_at_the_next_step_and_saves_nothing(viewer_with_volume, qtbot,
                                                                                  tmp_path, monkeypatch):
    w = _widget(viewer_with_volume, tmp_path, steps=10_000)
    held = HeldWork(at=1)  # the engine is held mid-run, after its first optimiser step
    held.install(monkeypatch, sys.modules[type(w).__module__], "finetune_work")  # the work Start runs
    job = w.start()
    qtbot.waitUntil(held.held.is_set, timeout=60_000)
    w.cancel_button.click()
    # the widget is free at once: the click did not wait for the engine, which is still held in its thread
    assert w.run_button.isEnabled() and not w.cancel_button.isEnabled()
    assert job.running and job.outcome is None
    assert any("Fine-tune: cancelled" in m for m in notifications("info"))
    held.release()
    # the engine stops at its next check between two optimiser steps
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=60_000)
    assert job.outcome.status == "cancelled" and held.calls == 1  # not one step after the cancel
    assert not list(tmp_path.iterdir()) and w.result_layer is None


def test_errors_are_one_sentence_notifications(viewer_with_volume, qtbot, tmp_path):
    viewer = viewer_with_volume
    w = _widget(viewer, tmp_path)
    viewer.layers["annotation"].data = np.zeros((6, 32, 32), np.uint8)
    assert w.start() is None
    assert any("holds no painted slice" in m for m in notifications("error"))
    w.labels_combo.set_layer("ground truth")
    w.k_low_spin.setValue(0.8)
    w.k_high_spin.setValue(0.5)
    assert w.start() is None
    assert any("K bounds" in m for m in notifications("error"))
    w.k_low_spin.setValue(0.25)
    w.k_high_spin.setValue(0.75)
    w.size_spin.setValue(48)  # typed in: the arrows step by 32
    assert w.start() is None
    assert any("input size 48 is not a multiple of 32" in m for m in notifications("error"))
    w.size_spin.setValue(0)
    w.background_edit.setText("0, 9")
    assert w.start() is None
    assert any("background slices [9] are outside the volume's slices 0..5" in m for m in notifications("error"))


def test_closing_the_viewer_stops_a_running_fine_tune(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from widget_helpers import tiny_volume

    viewer = make_napari_viewer()
    image, labels = tiny_volume()
    viewer.add_image(image, name="ct")
    viewer.add_labels(labels, name="annotation")
    w = _widget(viewer, tmp_path, steps=10_000)
    held = HeldWork(at=1, until_cancel=True)  # held after its first step until the job is cancelled
    held.install(monkeypatch, sys.modules[type(w).__module__], "finetune_work")  # the work Start runs
    job = w.start()
    qtbot.waitUntil(held.held.is_set, timeout=60_000)
    viewer.close()
    qtbot.waitUntil(lambda: not job.running, timeout=60_000)
    # closing cancelled the job and its thread ended at the engine's next check: not one step after the close
    assert job.cancel_requested and held.calls == 1
    assert not list(tmp_path.iterdir())


def test_start_with_no_step_cap_trains_until_the_budget(viewer_with_volume, qtbot, tmp_path):
    # the widget's default: steps "no cap" (0) and a time budget; Start used to fail drawing the plot
    w = _widget(viewer_with_volume, tmp_path, steps=0)
    w.budget_spin.setValue(1.5)
    job = w.start()
    assert job is not None
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=60_000)
    res = w.last_result.train
    assert res.stopped == "time" and len(res.reports) >= 1
    assert w.plot.steps == list(range(1, len(res.reports) + 1))


def test_memory_box_follows_the_preset(make_napari_viewer):
    """A new lite model starts without the bank (it scored lower at equal time), a paper model with it."""
    from napari_smp._widgets.finetune import FinetuneWidget

    w = FinetuneWidget(make_napari_viewer())
    assert w.start_picker.combo.currentText() == "new lite model" and not w.memory_check.isChecked()
    w.start_picker.select("new paper model")
    assert w.memory_check.isChecked()
    w.memory_check.setChecked(False)  # the user's choice stands while the preset stays
    w.start_picker.select("new paper model")
    assert not w.memory_check.isChecked()
    w.start_picker.select("new lite model")
    assert not w.memory_check.isChecked()
    w.memory_check.setChecked(True)
    w.start_picker.select("new paper model")
    assert w.memory_check.isChecked()


def test_the_cluster_layout_is_offered_for_a_new_model_with_the_bank_and_builds_it(viewer_with_volume, qtbot,
                                                                                      tmp_path):
    from napari_smp.engine.checkpoint import load_checkpoint

    w = _widget(viewer_with_volume, tmp_path, steps=3)
    assert w.memory_check.isChecked() and w.cluster_bank_check.isEnabled()
    w.memory_check.setChecked(False)  # no bank, nothing to lay out
    assert not w.cluster_bank_check.isEnabled()
    w.memory_check.setChecked(True)
    w.cluster_bank_check.setChecked(True)
    job = w.start()
    assert job is not None
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=60_000)
    _, config = load_checkpoint(w.last_result.path)
    assert config.use_memory and config.lite_memory_stages == (1,) and config.memory.tied_writes
    assert config.memory.prototype_loss > 0
    # the new model is the next start, and a checkpoint keeps the layout it was built with
    assert w.start_picker.combo.currentText() == "model" and not w.cluster_bank_check.isEnabled()
    w.start_picker.select("new lite model")
    assert w.cluster_bank_check.isEnabled()


def test_a_good_completion_shows_propagation_first_then_the_pooled_labels_in_the_same_plainly_named_layer(
        viewer_with_volume, qtbot, tmp_path, monkeypatch):
    from napari_smp._widgets._session import SESSION
    from napari_smp.engine import completion

    # when a network is pooled is completion's rule (tests/engine/test_completion.py); here a tiny network
    # that fits its painted slices well enough for the widget to call it good (>= 0.5) is pooled
    monkeypatch.setattr(completion, "MIN_NETWORK_STEPS", 30)
    monkeypatch.setattr(completion, "MIN_PAINTED_DICE", 0.5)
    viewer = viewer_with_volume
    painting = viewer.layers["annotation"].data.copy()
    truth = viewer.layers["ground truth"].data.copy()
    w = _widget(viewer, tmp_path, steps=60, fill=True)
    viewer.layers.selection.active = viewer.layers["annotation"]  # the user paints on while it runs
    warned = len(notifications("warning"))  # napari keeps the earlier tests' notifications
    inserted = []  # (layer name, optimiser steps the plot had seen) at every layer added
    viewer.layers.events.inserted.connect(lambda e: inserted.append((e.value.name, len(w.plot.steps))))
    w.start()
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=180_000)
    res = w.last_result
    # one layer added, and added before the first optimiser step: the propagated labels
    assert inserted == [("ct completion (propagated; training...)", 0)]
    assert res.completion.sources == "propagation + network", (res.completion.notes, res.train.answers)
    layer = w.result_layer
    assert layer.name == "ct completion" and viewer.layers[-1] is layer  # a good result has a plain name
    assert viewer.layers.selection.active is viewer.layers["annotation"]  # the brush stayed on the painting
    np.testing.assert_array_equal(layer.data, res.completion.labels)
    np.testing.assert_array_equal(layer.data[[1, 4]], painting[[1, 4]])  # painted slices as painted
    rest = [0, 2, 3, 5]
    inter = np.count_nonzero((layer.data[rest] == truth[rest]) & (truth[rest] > 0))
    dice = 2 * inter / (np.count_nonzero(layer.data[rest]) + np.count_nonzero(truth[rest]))
    assert dice > 0.9, (dice, res.train.answers)
    assert layer.metadata["class_names"] == {0: "background", 1: "class 1", 2: "class 2"}
    np.testing.assert_allclose(layer.scale, SPACING)
    assert not w.status.text().startswith("\u26a0")
    assert w.status.text().startswith("propagation + network: 4 slices filled from 2 painted in ")
    assert notifications("warning")[warned:] == []
    assert res.path == tmp_path / "model.safetensors" and res.path.is_file() and SESSION.names() == ["model"]
    # the picker stayed on the painting, not on the filled result now in the viewer
    assert w.labels_combo.currentText() == "annotation" and not w.dense_label.isVisible()
    # where to paint next: the button shows the suggested, unpainted slice and hands the brush to the painting
    nxt = res.completion.suggestion
    assert nxt is not None and nxt.slice not in (1, 4) and w.next_button.isEnabled()
    assert f"slice {nxt.slice}" in w.next_button.toolTip()
    viewer.layers.selection.active = layer
    w.next_button.click()
    assert viewer.dims.current_step[0] == nxt.slice
    assert viewer.layers.selection.active is viewer.layers["annotation"]


@pytest.mark.parametrize("stage", ["propagation", "training", "prediction"])
def test_cancel_in_every_stage_leaves_the_viewer_as_it_was(viewer_with_volume, qtbot, tmp_path, monkeypatch,
                                                           stage):
    from napari_smp.engine import completion
    from napari_smp.engine.inference.predictor import Predictor

    viewer = viewer_with_volume
    before = {ly.name: ly.data.copy() for ly in viewer.layers}
    w = _widget(viewer, tmp_path, steps=3 if stage == "prediction" else 10_000, fill=True)
    predicted = []
    if stage == "prediction":  # let a 3-step network be pooled, and see that prediction was reached
        monkeypatch.setattr(completion, "MIN_NETWORK_STEPS", 1)
        monkeypatch.setattr(completion, "MIN_PAINTED_DICE", 0.0)
        predict = Predictor.predict
        monkeypatch.setattr(Predictor, "predict", lambda self, *a, **k: predicted.append(1) or predict(self, *a, **k))
    # held before propagation, after the first step (the propagated layer shown), after the last step
    held = HeldWork(at={"propagation": 0, "training": 2, "prediction": 4}[stage])
    held.install(monkeypatch, sys.modules[type(w).__module__], "finetune_work")  # the work Start runs
    job = w.start()
    qtbot.waitUntil(held.held.is_set, timeout=60_000)
    if stage != "propagation":
        qtbot.waitUntil(lambda: w._provisional is not None, timeout=10_000)  # the first result is on screen
    w.cancel_button.click()
    held.release()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=60_000)
    assert job.outcome.status == "cancelled" and w.status.text() == "cancelled"
    assert bool(predicted) == (stage == "prediction")
    assert w.result_layer is None and w.last_result is None
    assert [ly.name for ly in viewer.layers] == list(before)  # no new layer, the user's untouched
    for name, data in before.items():
        np.testing.assert_array_equal(viewer.layers[name].data, data)
    assert w.run_button.isEnabled()


def test_the_picker_prefers_the_sparse_painting_on_the_image_grid_and_warns_on_a_ground_truth(make_napari_viewer,
                                                                                               qtbot):
    from widget_helpers import tiny_volume

    from napari_smp._widgets.finetune import FinetuneWidget

    viewer = make_napari_viewer()
    image, labels = tiny_volume(depth=10)
    viewer.add_image(image, name="ct")
    viewer.add_labels(labels.copy(), name="ground truth")  # first in the list, labelled on 10 of 10 slices
    other = np.zeros((10, 16, 16), np.uint8)
    other[5, 0, 0] = 1
    viewer.add_labels(other, name="another grid")  # painted on one slice, but not on this image's grid
    viewer.add_labels(np.zeros_like(labels), name="empty")
    sparse = np.zeros_like(labels)
    sparse[[2, 7]] = labels[[2, 7]]
    viewer.add_labels(sparse, name="painting")
    w = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert w.labels_combo.currentText() == "painting" and w.dense_label.isHidden()
    # the user picks the ground truth: warned under the picker, and the pick stands as layers come and go
    w.labels_combo.setCurrentIndex(w.labels_combo.findText("ground truth"))
    assert not w.dense_label.isHidden()
    assert w.dense_label.text() == ("this looks like a ground truth (labels on 10 of 10 slices): "
                                    "fine-tune learns from every labelled slice")
    viewer.add_labels(np.zeros_like(labels), name="later")
    qtbot.wait(50)
    assert w.labels_combo.currentText() == "ground truth"
    # back to the painting: no warning; painting it slice after slice turns the warning on as it happens
    w.labels_combo.setCurrentIndex(w.labels_combo.findText("painting"))
    assert w.dense_label.isHidden()
    layer = viewer.layers["painting"]
    for z in range(10):
        layer.paint((z, 1, 1), 1)
    qtbot.waitUntil(lambda: not w.dense_label.isHidden(), timeout=2_000)
    assert "labels on 10 of 10 slices" in w.dense_label.text()
    # in a fresh widget with no painted layer on the grid, the grid's first (empty) layer is the default
    viewer.layers.remove("painting")
    viewer.layers.remove("ground truth")
    w2 = FinetuneWidget(viewer)
    assert w2.labels_combo.currentText() == "empty"


@pytest.mark.parametrize("fill", [True, False])
def test_a_model_that_fits_its_painted_slices_poorly_is_flagged_in_name_status_and_warning(
        viewer_with_volume, qtbot, tmp_path, monkeypatch, fill):
    import napari_smp.engine as engine
    import napari_smp.engine.training as training
    from napari_smp.engine import completion

    def poorly(result):  # the run as it was, but scored 0.12 at best on its own painted slices
        net = result.network if fill else result
        net.answers = {"finest": 0.12, "sum": 0.05}
        return result

    if fill:  # pooled whatever its fit (completion's rule has its own tests), so only the widget flags it
        monkeypatch.setattr(completion, "MIN_NETWORK_STEPS", 1)
        monkeypatch.setattr(completion, "MIN_PAINTED_DICE", 0.0)
        real = engine.complete
        monkeypatch.setattr(engine, "complete", lambda *a, **k: poorly(real(*a, **k)))
    else:
        real = training.finetune
        monkeypatch.setattr(training, "finetune", lambda *a, **k: poorly(real(*a, **k)))
    viewer = viewer_with_volume
    w = _widget(viewer, tmp_path, steps=3, fill=fill)
    layers = [ly.name for ly in viewer.layers]
    w.start()
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=60_000)
    flag = "poor fit: painted-slice Dice 0.12"
    assert w.status.text().startswith(f"\u26a0 {flag}"), w.status.text()
    if fill:
        assert w.last_result.completion.sources == "propagation + network"
        assert w.result_layer.name == f"ct completion ({flag})"
        assert [ly.name for ly in viewer.layers] == [*layers, f"ct completion ({flag})"]
        assert any(f"'ct completion ({flag})': {flag}" in m for m in notifications("warning"))
    else:  # a model alone: no layer, the same flag
        assert w.result_layer is None and [ly.name for ly in viewer.layers] == layers
        assert any(f"the fine-tuned model: {flag}" in m for m in notifications("warning"))


def test_a_run_that_fails_after_propagation_takes_its_propagated_layer_away(viewer_with_volume, qtbot, tmp_path,
                                                                           monkeypatch):
    from napari_smp.engine import completion
    from napari_smp.engine.inference.predictor import Predictor

    def fail(*_, **__):
        raise OSError("the disk is full")

    monkeypatch.setattr(completion, "MIN_NETWORK_STEPS", 1)  # pooled, so prediction runs (and fails)
    monkeypatch.setattr(completion, "MIN_PAINTED_DICE", 0.0)
    monkeypatch.setattr(Predictor, "predict", fail)
    viewer = viewer_with_volume
    names = [ly.name for ly in viewer.layers]
    w = _widget(viewer, tmp_path, steps=3, fill=True)
    shown = []  # the propagated layer did appear before the failure
    viewer.layers.events.inserted.connect(lambda e: shown.append(e.value.name))
    job = w.start()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=60_000)
    assert job.outcome.status == "error" and w.status.text() == "failed: the disk is full"
    assert shown == ["ct completion (propagated; training...)"]
    assert [ly.name for ly in viewer.layers] == names and w.result_layer is None
    assert any("Fine-tune failed: the disk is full" in m for m in notifications("error"))


# ---- scribbles and corrections (issue 29)


def test_the_mode_box_switches_to_scribbles_counts_marked_pixels_and_refuses_no_background(
        viewer_with_volume, qtbot, tmp_path):
    viewer = viewer_with_volume
    layer = viewer.layers["annotation"]
    w = _widget(viewer, tmp_path, fill=True)
    assert w.mode_combo.currentText() == "whole slices" and w.background_label is None
    assert w.background_spin.isHidden()  # shown with scribbles only
    marked = int(np.count_nonzero(layer.data))
    w.mode_combo.setCurrentText("scribbles")
    w.background_spin.setValue(3)
    assert not w.background_spin.isHidden() and w.background_label == 3
    assert w.summary_label.text() == (f"{marked:,} pixels annotated on 2 axial slices (1, 4): class 1, class 2; "
                                      "no background yet: paint some with label 3")
    # Start without a background mark: one sentence, nothing run, no layer added
    before = [ly.name for ly in viewer.layers]
    assert w.start() is None
    assert "no background mark (label 3)" in w.status.text()
    assert [ly.name for ly in viewer.layers] == before
    # a background stroke (label 3) on another slice: counted at once, its slice joins the list
    layer.selected_label = 3
    layer.paint((2, 2, 2), 3)
    qtbot.waitUntil(lambda: "background (label 3)" in w.summary_label.text(), timeout=2_000)
    marked = int(np.count_nonzero(layer.data))
    assert w.summary_label.text().startswith(f"{marked:,} pixels annotated on 3 axial slices (1, 2, 4)")
    # back to whole slices: the slice line again
    w.mode_combo.setCurrentText("whole slices")
    assert w.summary_label.text().startswith("3 slices annotated (1, 2, 4)") and w.background_spin.isHidden()


def _run_scribbles(viewer, qtbot, tmp_path, background: int):
    """Start a completion of the annotation layer's scribbles (4 steps) and wait for its result."""
    w = _widget(viewer, tmp_path, steps=4, fill=True)
    w.mode_combo.setCurrentText("scribbles")
    w.background_spin.setValue(background)
    assert w.start() is not None
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=120_000)
    return w


def test_a_scribble_run_fills_the_volume_with_the_network_and_writes_background_as_0(viewer_with_volume, qtbot,
                                                                                      tmp_path):
    viewer = viewer_with_volume
    layer = viewer.layers["annotation"]
    scrib = np.zeros_like(layer.data)
    scrib[[1, 4]] = np.where(layer.data[[1, 4]] > 0, layer.data[[1, 4]], 0)
    scrib[:, 0, :] = 5  # a coronal background stroke through every axial slice
    layer.data = scrib
    w = _run_scribbles(viewer, qtbot, tmp_path, background=5)
    done = w.last_result.completion
    assert done.sources == "network" and "scribbles: the network alone" in done.notes[0]
    result = w.result_layer.data
    assert 5 not in np.unique(result)  # written as background
    np.testing.assert_array_equal(result[:, 0, :], 0)
    assert w.last_result.train.pixels == np.count_nonzero(scrib)


def test_axial_scribbles_are_grown_into_whole_slices_and_completed_from_them(viewer_with_volume, qtbot, tmp_path):
    viewer = viewer_with_volume
    layer = viewer.layers["annotation"]
    organs = layer.data[[1, 4]]
    scrib = np.zeros_like(layer.data)
    cores = np.stack([ndimage.binary_erosion(o > 0, iterations=1) for o in organs])  # in-plane strokes
    scrib[[1, 4]] = np.where(cores, organs, 0)
    band = np.zeros(organs.shape[1:], bool)
    band[1:3, 1:-1] = True  # a background stroke along the top of each of the two slices
    scrib[[1, 4]] = np.where(band & (organs == 0), 5, scrib[[1, 4]])
    layer.data = scrib
    w = _run_scribbles(viewer, qtbot, tmp_path, background=5)
    done = w.last_result.completion
    assert "grown into whole slices" in done.notes[0]
    np.testing.assert_array_equal(done.propagation.painted, [1, 4])
    result = w.result_layer.data
    assert 5 not in np.unique(result)
    for truth, z in zip(organs, (1, 4), strict=True):  # the strokes' slices come back whole
        for c in np.unique(truth)[1:]:
            p, g = result[z] == c, truth == c
            assert 2 * (p & g).sum() / (p.sum() + g.sum()) > 0.8


def test_refine_goes_on_from_the_sessions_last_model_with_a_few_steps(viewer_with_volume, qtbot, tmp_path):
    from napari_smp._widgets import finetune as module
    from napari_smp._widgets._session import SESSION

    SESSION.clear()
    viewer = viewer_with_volume
    w = _widget(viewer, tmp_path, steps=0, fill=True, proxied=True)  # layers compared as napari hands them out
    w.budget_spin.setValue(0)
    assert not w.refine_button.isEnabled()  # nothing to refine yet
    w.steps_spin.setValue(5)
    w.start()
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=60_000)
    first, layer = w.last_result, w.result_layer
    names = [ly.name for ly in viewer.layers]
    assert w.refine_button.isEnabled() and SESSION.latest().path == first.path
    # a correction painted on another slice, then Refine: from that model, at most REFINE_STEPS steps
    viewer.layers["annotation"].paint((3, 16, 16), 1)
    w.steps_spin.setValue(0)  # no cap in the box: refine caps it
    w.last_result = None
    w.start_picker.select("new lite model")  # refine ignores the picker: it goes on from the last model
    w.refine_button.click()
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=120_000)
    second = w.last_result.train
    assert second.warm and len(second.reports) <= module.REFINE_STEPS
    assert second.path != first.path and second.path.exists()  # a new file, the first model kept
    # the result layer is refreshed in place: no new layer, the new labels in the old one
    assert w.result_layer is layer and [ly.name for ly in viewer.layers] == names
    np.testing.assert_array_equal(layer.data, w.last_result.completion.labels)
    assert layer.data[3, 16, 16] == 1  # the correction, painted after the first result, is in it
    # it went on from the last result: the stretches the correction did not touch copied, the intensity
    # strength kept rather than calibrated again (the seconds go to the network)
    done = w.last_result.completion
    assert done.evidence is first.completion.evidence
    assert done.propagation.reused is not None and not done.propagation.reused[3]
    SESSION.clear()


def test_a_correction_shows_its_labels_in_the_result_layer_and_a_cancel_puts_them_back(
        viewer_with_volume, qtbot, tmp_path, monkeypatch):
    """A correction adds no layer: its propagated labels go straight into the last result layer (adding and
    removing one is napari's own quarter second each), and a cancel restores that layer's labels and name."""
    from napari_smp._widgets._session import SESSION

    SESSION.clear()
    viewer = viewer_with_volume
    w = _widget(viewer, tmp_path, steps=3, fill=True, proxied=True)
    w.start()
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=60_000)
    layer = w.result_layer
    before, name, names = layer.data.copy(), layer.name, [ly.name for ly in viewer.layers]
    viewer.layers["annotation"].paint((3, 16, 16), 2)  # a correction on an unpainted slice
    held = HeldWork(at=1, until_cancel=True)  # held once the propagated labels are sent, until Cancel
    held.install(monkeypatch, sys.modules[type(w).__module__], "finetune_work")
    inserted = []
    viewer.layers.events.inserted.connect(lambda e: inserted.append(e.value.name))
    job = w.refine()
    qtbot.waitUntil(held.held.is_set, timeout=60_000)
    qtbot.waitUntil(lambda: layer.data[3, 16, 16] == 2, timeout=10_000)  # the correction's labels are shown
    assert "propagated" in layer.name and inserted == []
    w.cancel()
    qtbot.waitUntil(lambda: not job.running, timeout=60_000)
    np.testing.assert_array_equal(layer.data, before)
    assert layer.name == name and [ly.name for ly in viewer.layers] == names and inserted == []
    SESSION.clear()
