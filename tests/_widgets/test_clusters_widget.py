"""Clusters widget in a real viewer: assignment, hidden similarity maps, boxes and tables, on the image grid."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import ORIGIN, SPACING

from napari_smp._widgets._display import table_text

pytestmark = pytest.mark.gui


def _widget(viewer, checkpoint):
    from napari_smp._widgets.clusters import ClustersWidget

    w = ClustersWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.image_combo.set_layer("ct")
    w.device_combo.setCurrentText("cpu")
    w.model_picker.set_path(checkpoint)
    return w


def test_clusters_of_a_slice_range_with_classes(viewer_with_volume, qtbot, tiny_checkpoint, tmp_path):
    viewer = viewer_with_volume
    n_user = len(viewer.layers)
    w = _widget(viewer, tiny_checkpoint)
    job = w.load_model()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=20_000)
    modules = [w.module_combo.itemText(i) for i in range(w.module_combo.count())]
    assert "encoder.stage3.0" in modules and "decoder.stage1" in modules
    w.module_combo.setCurrentText("encoder.stage3.0")
    w.slices_combo.setCurrentText("slice range")
    w.first_spin.setValue(2)
    w.last_spin.setValue(4)
    w.labels_combo.set_layer("ground truth")
    w.run_button.click()
    qtbot.waitUntil(lambda: bool(w.layers), timeout=20_000)
    stack = viewer.layers["similarity encoder.stage3.0"]  # one layer for every cluster
    labels = viewer.layers["clusters encoder.stage3.0"]
    boxes = viewer.layers["regions encoder.stage3.0"]
    k = stack.data.shape[0]
    assert k == 3 and stack.data.shape == (3, 3, 32, 32) and not stack.visible  # clusters = classes; hidden
    assert labels.data.shape == (3, 32, 32) and labels.data.max() <= k
    # the air around the body is transparent: exactly the pixels outside the report's body
    np.testing.assert_array_equal(labels.data > 0, w.report.body)
    assert 0 < (labels.data > 0).sum() < labels.data.size
    # a slab starting at slice 2 sits exactly over slices 2..4 of the image, the stack too
    np.testing.assert_allclose(labels.scale, SPACING)
    np.testing.assert_allclose(labels.translate, np.array(ORIGIN) + [2 * SPACING[0], 0, 0])
    np.testing.assert_allclose(labels.data_to_world((0, 5, 5)), viewer.layers["ct"].data_to_world((2, 5, 5)))
    np.testing.assert_allclose(stack.data_to_world((1, 0, 5, 5))[1:], viewer.layers["ct"].data_to_world((2, 5, 5)))
    np.testing.assert_allclose(boxes.translate, ORIGIN)
    # one box per (slice, cluster in the body), around its main region, on slices 2..4
    present = sum(len(np.unique(labels.data[i][labels.data[i] > 0])) for i in range(3))
    assert len(boxes.data) == present
    zs = {float(v[0, 0]) for v in boxes.data}
    assert zs <= {2.0, 3.0, 4.0}
    for v, c in zip(boxes.data, boxes.features["cluster"], strict=True):  # the box frames its cluster's pixels
        z = int(v[0, 0]) - 2
        y0, y1 = int(v[:, 1].min() + 0.5), int(v[:, 1].max() + 0.5)
        x0, x1 = int(v[:, 2].min() + 0.5), int(v[:, 2].max() + 0.5)
        inside = labels.data[z, y0:y1, x0:x1] == c + 1
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
    # each box in its cluster's colour in the cluster map
    expected = [labels.get_color(c + 1) for c in boxes.features["cluster"]]
    np.testing.assert_allclose(boxes.edge_color, np.array(expected), atol=1e-6)
    assert len({tuple(np.round(c, 3)) for c in expected}) == len(set(boxes.features["cluster"]))
    # tables: class, body pixels, shares and purity; each cluster's class shares sum to 100 %
    shares = table_text(w.shares_table)
    assert shares[0] == ["cluster", "class", "pixels", "share", "purity"] and len(shares) == k + 1
    assert [r[1] for r in shares[1:]] == ["background", "liver", "spleen"]  # tied to the model's classes
    counts = [int(r[2]) for r in shares[1:]]
    assert counts == [int((labels.data == c + 1).sum()) for c in range(k)]
    classes = table_text(w.class_table)
    assert classes[0] == ["cluster", "background", "liver", "spleen"]
    for row, count in zip(classes[1:], counts, strict=True):
        if count:
            assert abs(sum(float(v.rstrip(" %")) for v in row[1:]) - 100) < 0.5
    assert len(viewer.layers) == n_user + 3
    # the figure and the table, written by a worker; a second save into the same folder is refused
    job = w.save_figure(str(tmp_path))
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=30_000)
    assert job.outcome.status == "ok", job.outcome
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clusters.csv", "clusters.png", "clusters.svg"]
    assert w.save_figure(str(tmp_path)) is None


def test_clusters_of_the_current_slice_and_no_labels(viewer_with_volume, qtbot, tiny_checkpoint):
    viewer = viewer_with_volume
    viewer.dims.set_point(0, ORIGIN[0] + 5 * SPACING[0])  # world position of slice 5
    w = _widget(viewer, tiny_checkpoint)
    assert w.slice_range(viewer.layers["ct"], 6) == (5, 5)
    w.run()  # no module chosen yet: the model is loaded and its last module is used
    qtbot.waitUntil(lambda: bool(w.layers), timeout=20_000)
    lab = next(ly for ly in w.layers if ly.name.startswith("clusters "))
    assert lab.name == "clusters decoder.stage1" and lab.data.shape == (1, 32, 32)
    np.testing.assert_allclose(lab.translate[0], ORIGIN[0] + 5 * SPACING[0])
    assert w.class_table.rowCount() == 0


def test_a_model_without_memory_bank_is_refused_in_one_sentence(viewer_with_volume, qtbot, tmp_path):
    from dataclasses import replace

    from widget_helpers import notifications, tiny_config, tiny_train, tiny_volume

    from napari_smp.engine.checkpoint import save_checkpoint
    from napari_smp.engine.training.finetune import finetune

    image, labels = tiny_volume()
    res = finetune(image, labels, config=replace(tiny_config(), use_memory=False), train=tiny_train(steps=2))
    plain = save_checkpoint(tmp_path / "plain.safetensors", res.model, res.config)
    viewer = viewer_with_volume
    n_layers = len(viewer.layers)
    w = _widget(viewer, plain)
    job = w.run()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=20_000)
    assert job.outcome.status == "error"
    assert any("trained without its memory bank: it has no clusters to show" in m for m in notifications("error"))
    assert len(viewer.layers) == n_layers and not w.layers
