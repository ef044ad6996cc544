"""Every widget in the plugin manifest opens from the Plugins menu; the demo docks them with its layers."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml
from widget_helpers import tiny_volume

pytestmark = pytest.mark.gui


def _manifest_widgets() -> list[tuple[str, str]]:
    """(display name, class name) of every widget the shipped napari.yaml declares, in its order."""
    manifest = yaml.safe_load(resources.files("napari_smp").joinpath("napari.yaml").read_text(encoding="utf-8"))
    classes = {c["id"]: c["python_name"].rsplit(":", 1)[1] for c in manifest["contributions"]["commands"]}
    return [(w["display_name"], classes[w["command"]]) for w in manifest["contributions"]["widgets"]]


def test_the_manifest_declares_the_seven_widgets():
    # guards the parametrisation below: an unreadable manifest must not quietly test nothing
    assert [name for name, _ in _manifest_widgets()] == ["Fine-tune", "Segment", "Correct", "Clusters", "Metrics",
                                                           "Pre-train", "View"]


@pytest.mark.parametrize("name, cls", _manifest_widgets())
def test_every_manifest_widget_opens_from_the_plugins_menu(make_napari_viewer, name, cls):
    """napari builds the widget itself, as Plugins > Sim-MPNet Segmentation > NAME does."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-smp", name)
    assert type(widget).__name__ == cls
    image, labels = tiny_volume()
    viewer.add_image(image, name="ct")  # the widget follows the viewer napari gave it
    viewer.add_labels(labels, name="seg")
    if hasattr(widget, "layer_list"):  # Pre-train: a checklist of volumes
        assert [widget.layer_list.item(i).text() for i in range(widget.layer_list.count())] == ["ct"]
    elif hasattr(widget, "window_combo"):  # View: a window preset lands on the viewer's image
        viewer.layers.selection.active = viewer.layers["ct"]
        assert widget.set_window("lung") == (-1350.0, 150.0)  # W1500 / L-600
        assert tuple(viewer.layers["ct"].contrast_limits) == (-1350.0, 150.0)
    else:
        combo = next(getattr(widget, a) for a in ("image_combo", "pred_combo", "labels_combo") if hasattr(widget, a))
        assert combo.currentText() in ("ct", "seg")


def test_pretrain_from_the_plugins_menu_runs_to_the_end(make_napari_viewer, qtbot, tmp_path):
    """The widget as napari docks it, its default model, Start pressed on a tiny volume."""
    from napari_smp.engine.checkpoint import is_pretrained_checkpoint

    viewer = make_napari_viewer()
    image, _ = tiny_volume(depth=4)
    viewer.add_image(image, name="ct")
    _, widget = viewer.window.add_plugin_dock_widget("napari-smp", "Pre-train")
    widget.steps.setValue(2)
    widget.out.setText(str(tmp_path / "encoder.safetensors"))
    qtbot.mouseClick(widget.run_button, _left_button())
    assert not widget.run_button.isEnabled() and widget.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: widget.job.outcome is not None, timeout=180_000)
    assert widget.status.text().startswith("saved encoder.safetensors: 2 steps"), widget.status.text()
    assert widget.plot.steps == [1, 2]
    assert is_pretrained_checkpoint(tmp_path / "encoder.safetensors")
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def _left_button():
    from qtpy.QtCore import Qt

    return Qt.MouseButton.LeftButton


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
