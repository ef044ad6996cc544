"""Open napari on the demo's output folder: image, sparse paint, prediction and ground truth."""

from __future__ import annotations

from pathlib import Path

__all__ = ["open_demo_viewer", "load_demo_layers"]


def load_demo_layers(viewer, out: str | Path) -> None:  # viewer: napari.Viewer
    """Add the demo's files to ``viewer`` as layers with their physical geometry."""
    from .._napari_io import layer_data_from_path

    out = Path(out)
    order = [
        ("phantom_image.nii.gz", "image", {}),
        ("phantom_labels.nii.gz", "ground truth", {"visible": False}),
        ("prediction.nii.gz", "prediction", {"opacity": 0.5}),
        ("sparse_annotation.nii.gz", "annotation", {}),
    ]
    for fname, name, extra in order:
        path = out / fname
        if not path.exists():
            continue
        for data, kwargs, kind in layer_data_from_path(path, force_labels=kind_is_labels(fname)):
            kwargs = {**kwargs, "name": name, **extra}
            getattr(viewer, f"add_{kind}")(data, **kwargs)


def kind_is_labels(fname: str) -> bool:
    return "image" not in fname


def open_demo_viewer(out: str | Path) -> None:
    """Show the demo in a napari window and block until it is closed."""
    import napari

    viewer = napari.Viewer(title="napari-smp demo")
    load_demo_layers(viewer, out)
    viewer.dims.set_point(0, viewer.layers[0].data.shape[0] // 2 * viewer.layers[0].scale[0])
    napari.run()
