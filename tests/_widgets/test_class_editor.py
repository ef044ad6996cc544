"""The class editor in the View panel: names typed there reach the layer, the Metrics table and saved files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from widget_helpers import ORIGIN, SPACING

from napari_smp._widgets._display import table_text
from napari_smp._widgets._layers import class_names_of

pytestmark = pytest.mark.gui


def _labels() -> np.ndarray:
    lab = np.zeros((6, 32, 32), np.uint8)
    lab[:, 4:12, 4:12] = 5  # TotalSegmentator's liver value
    lab[:, 20:26, 18:28] = 52  # and its aorta
    return lab


def _editor(viewer, qtbot, layer_name):
    dock, view = viewer.window.add_plugin_dock_widget("napari-smp", "View")
    editor = view.class_editor
    editor.layer_combo.set_layer(layer_name)
    qtbot.waitUntil(lambda: not editor.scanning, timeout=10_000)
    return editor


def test_names_typed_in_the_editor_reach_the_layer_metrics_and_a_saved_file(make_napari_viewer, qtbot, tmp_path):
    import napari

    from napari_smp._widgets.evaluate import MetricsWidget
    from napari_smp.io import read_labels

    viewer = make_napari_viewer()
    gt = _labels()
    layer = viewer.add_labels(gt, name="organs", scale=SPACING, translate=ORIGIN)
    editor = _editor(viewer, qtbot, "organs")
    assert editor.values() == [5, 52] and editor.names() == {}  # found in the layer, not named yet
    editor.set_name(5, "liver")
    editor.table.item(1, 1).setText("aorta")  # what typing in the name cell does
    assert class_names_of(layer) == {0: "background", 5: "liver", 52: "aorta"}
    assert layer.metadata["class_names"] == {5: "liver", 52: "aorta"}
    assert layer.get_status((0, 5, 5), world=False)  # napari reads the features without complaint

    # the Metrics table names the classes from the layer
    pred = gt.copy()
    pred[:, 4:6] = 0
    viewer.add_labels(pred, name="prediction", scale=SPACING, translate=ORIGIN)
    metrics = MetricsWidget(viewer)
    metrics.pred_combo.set_layer("prediction")
    metrics.gt_combo.set_layer("organs")
    job = metrics.compute()
    with qtbot.waitSignal(job.ended, timeout=20_000):
        pass
    assert [r[0] for r in table_text(metrics.table)[1:]] == ["liver", "aorta", "mean"]

    # a file written from the layer carries them (NRRD segment names)
    out = tmp_path / "organs.nrrd"
    napari.save_layers(str(out), [layer], plugin="napari-smp")
    data, meta = read_labels(out)
    assert meta.class_names == {5: "liver", 52: "aorta"} and set(np.unique(data)) == {0, 5, 52}

    # clearing a name drops it; the value stays listed
    editor.table.item(0, 1).setText("")
    assert class_names_of(layer) == {0: "background", 52: "aorta"} and editor.values() == [5, 52]


def test_names_read_from_a_sidecar_file_show_in_the_editor(make_napari_viewer, qtbot, tmp_path):
    lab = _labels()
    nib.save(nib.Nifti1Image(lab.transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), str(tmp_path / "case_seg.nii.gz"))
    (tmp_path / "case_seg.json").write_text(json.dumps({"5": "liver", "52": "aorta", "61": "spleen"}))
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(tmp_path / "case_seg.nii.gz"), plugin="napari-smp")
    editor = _editor(viewer, qtbot, layer.name)
    assert editor.values() == [5, 52, 61]  # 61 is named though not painted: it is listed to paint later
    assert editor.names() == {5: "liver", 52: "aorta", 61: "spleen"}


def test_a_new_value_and_a_colour(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(_labels(), name="organs")
    editor = _editor(viewer, qtbot, "organs")
    aorta_before = np.asarray(layer.get_color(52), float)
    editor.add_value(7)
    assert editor.values() == [5, 7, 52] and 7 not in (class_names_of(layer) or {})
    editor.set_name(7, "tumour")
    assert class_names_of(layer)[7] == "tumour"
    editor.set_color(5, (1.0, 0.0, 0.0, 1.0))
    np.testing.assert_allclose(layer.get_color(5), (1, 0, 0, 1), atol=1e-6)
    np.testing.assert_allclose(layer.get_color(52), aorta_before, atol=1e-6)  # the others keep theirs
    assert editor.table.item(0, 2).text() == "#ff0000"
    assert editor.names() == {7: "tumour"}  # recolouring keeps the names


def test_names_of_a_dataset_json_show_for_a_label_file_of_the_dataset(make_napari_viewer, qtbot, tmp_path):
    (tmp_path / "labelsTr").mkdir()
    path = tmp_path / "labelsTr" / "case_001.nii.gz"
    nib.save(nib.Nifti1Image(_labels().transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), str(path))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "liver": 5, "aorta": 52}}))
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-smp")
    assert type(layer).__name__ == "Labels"
    editor = _editor(viewer, qtbot, layer.name)
    assert editor.names() == {5: "liver", 52: "aorta"}
