"""Open napari on the demo's output folder: image, sparse paint, prediction and ground truth.

The four widgets are docked with the demo's layers already chosen, so a newcomer presses Start in
Fine-tune, then Segment, then Compute in Metrics. A small View dock below them switches between the
radiological (default) and neurological display and sets CT window presets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["open_demo_viewer", "load_demo_layers", "dock_widgets", "dock_view_controls", "DEMO_LAYERS"]

#: demo file -> (layer name, extra layer kwargs), in the order they are stacked
DEMO_LAYERS: dict[str, tuple[str, dict[str, Any]]] = {
    "phantom_image.nii.gz": ("image", {}),
    "phantom_labels.nii.gz": ("ground truth", {"visible": False}),
    "prediction.nii.gz": ("prediction", {"opacity": 0.5}),
    "sparse_annotation.nii.gz": ("annotation", {}),
}


def load_demo_layers(viewer: Any, out: str | Path) -> None:
    """Add the demo's files to ``viewer`` (a ``napari.Viewer``) with their physical geometry."""
    from .._napari_io import read_layers

    for fname, (name, extra) in DEMO_LAYERS.items():
        path = Path(out) / fname
        if not path.exists():
            continue
        for data, kwargs, kind in read_layers(path):
            getattr(viewer, f"add_{kind}")(data, **{**kwargs, "name": name, **extra})


def dock_widgets(viewer: Any, checkpoint: str | Path | None = None) -> dict[str, Any]:
    """Dock Fine-tune, Segment, Clusters and Metrics, choosing the demo's layers where they exist.

    Args:
        viewer: a napari viewer holding (some of) ``image``, ``annotation``, ``prediction`` and
            ``ground truth``.
        checkpoint: a model to preselect in Segment and Clusters until one is fine-tuned here.
    """
    from .clusters import ClustersWidget
    from .evaluate import MetricsWidget
    from .finetune import FinetuneWidget
    from .segment import SegmentWidget

    names = {ly.name for ly in viewer.layers}
    widgets = {"Fine-tune": FinetuneWidget(viewer), "Segment": SegmentWidget(viewer),
               "Clusters": ClustersWidget(viewer), "Metrics": MetricsWidget(viewer)}
    ft, seg, clu, met = widgets.values()
    for combo in (ft.image_combo, seg.image_combo, clu.image_combo):
        if "image" in names:
            combo.set_layer("image")
    if "annotation" in names:
        ft.labels_combo.set_layer("annotation")
    if "ground truth" in names:
        met.gt_combo.set_layer("ground truth")
        clu.labels_combo.set_layer("ground truth")
    if "prediction" in names:
        met.pred_combo.set_layer("prediction")
    if checkpoint is not None and Path(checkpoint).is_file():
        seg.model_picker.set_path(checkpoint)
        clu.model_picker.set_path(checkpoint)

    def follow_new_segmentation(event: Any) -> None:
        # the newest segmentation is what the user wants to score next
        layer = event.value
        if layer.name.endswith("segmentation"):
            met.pred_combo.set_layer(layer)

    viewer.layers.events.inserted.connect(follow_new_segmentation)
    # one tabbed column keeps the canvas wide; Fine-tune, the first step, is shown
    docks = [viewer.window.add_dock_widget(w, name=name, area="right", tabify=i > 0)
             for i, (name, w) in enumerate(widgets.items())]
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, docks[0].raise_)  # after Qt has laid the tabs out
    dock_view_controls(viewer)
    return widgets


def dock_view_controls(viewer: Any) -> Any:
    """Dock the View controls (display convention, window presets) below the widgets; returns them."""
    from ._controls import ViewControls
    from ._layers import follow_medical_volumes

    follow_medical_volumes(viewer)
    controls = ViewControls(viewer)
    viewer.window.add_dock_widget(controls, name="View", area="right")
    return controls


def open_demo_viewer(out: str | Path) -> None:
    """Show the demo in a napari window with the widgets docked and block until it is closed."""
    import napari

    from ._layers import apply_radiological_view

    viewer = napari.Viewer(title="napari-smp demo")
    apply_radiological_view(viewer)  # the phantom is a RAS+ CT: anterior up, patient's right on the left
    load_demo_layers(viewer, out)
    dock_widgets(viewer, Path(out) / "model.safetensors")
    viewer.dims.set_point(0, viewer.dims.range[0].stop / 2)
    napari.run()
