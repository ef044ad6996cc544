"""The four widgets in the Plugins menu, and the demo viewer's docking with its layers preselected."""

from __future__ import annotations

import pytest
from widget_helpers import tiny_volume

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("name, cls", [("Fine-tune", "FinetuneWidget"), ("Segment", "SegmentWidget"),
                                       ("Clusters", "ClustersWidget"), ("Metrics", "MetricsWidget")])
def test_widgets_open_from_the_plugin_manifest(make_napari_viewer, name, cls):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-smp", name)
    assert type(widget).__name__ == cls
    image, labels = tiny_volume()
    viewer.add_image(image, name="ct")  # the widget sees the viewer napari gave it
    viewer.add_labels(labels, name="seg")
    combos = [getattr(widget, a) for a in ("image_combo", "pred_combo") if hasattr(widget, a)]
    assert combos[0].currentText() in ("ct", "seg")


def test_demo_docks_the_widgets_with_the_demo_layers_chosen(make_napari_viewer, tmp_path):
    from napari_smp._widgets.demo_viewer import dock_widgets

    viewer = make_napari_viewer()
    image, labels = tiny_volume()
    viewer.add_image(image, name="image")
    viewer.add_labels(labels, name="ground truth")
    viewer.add_labels(labels, name="prediction")
    viewer.add_labels(labels * 0, name="annotation")
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"")
    w = dock_widgets(viewer, ckpt)
    assert list(w) == ["Fine-tune", "Segment", "Clusters", "Metrics"]
    assert w["Fine-tune"].image_combo.currentText() == "image"
    assert w["Fine-tune"].labels_combo.currentText() == "annotation"
    assert w["Segment"].model_picker.choice().path == ckpt
    assert w["Clusters"].labels_combo.currentText() == "ground truth"
    assert (w["Metrics"].pred_combo.currentText(), w["Metrics"].gt_combo.currentText()) == \
        ("prediction", "ground truth")
    # a new segmentation becomes the prediction to score
    viewer.add_labels(labels, name="image segmentation")
    assert w["Metrics"].pred_combo.currentText() == "image segmentation"
