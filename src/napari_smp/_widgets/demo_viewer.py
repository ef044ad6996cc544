"""Open napari on the demo's output folder: image, sparse paint, prediction and ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["open_demo_viewer", "load_demo_layers", "DEMO_LAYERS"]

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


def open_demo_viewer(out: str | Path) -> None:
    """Show the demo in a napari window and block until it is closed."""
    import napari

    viewer = napari.Viewer(title="napari-smp demo")
    load_demo_layers(viewer, out)
    viewer.dims.set_point(0, viewer.dims.range[0].stop / 2)
    napari.run()
