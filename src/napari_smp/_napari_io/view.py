"""The radiological view: napari's camera turned so RAS+ ``(Z, Y, X)`` volumes look as in radiology viewers.

Only the camera turns (never the data, the layer transforms or the world coordinates, which stay RAS
mm), so painting, the status bar and saved files are unaffected. The plugin asks for the view in two
ways: its widgets and the demo call :func:`follow_medical_volumes` on their viewer, and the reader
(File > Open, drag and drop) calls :func:`follow_current_viewer` while napari reads a file, because a
reader hook returns layer data and is never handed the viewer: ``napari.current_viewer()`` is the
viewer whose File menu or drop target asked for the file.
"""

from __future__ import annotations

import weakref
from typing import Any

from ..io.display import CONVENTIONS, RADIOLOGICAL, camera_orientation
from ..io.meta import META_KEY

__all__ = ["apply_radiological_view", "follow_current_viewer", "follow_medical_volumes", "view_convention"]

#: viewer -> the convention it follows (weak: a closed viewer is forgotten)
_CONVENTION: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_FOLLOWED: weakref.WeakSet[Any] = weakref.WeakSet()


def view_convention(viewer: Any) -> str | None:
    """The convention :func:`apply_radiological_view` set on ``viewer``, or None (napari's default view)."""
    return _CONVENTION.get(viewer)


def _orient(viewer: Any) -> None:
    convention = _CONVENTION.get(viewer)
    dims = viewer.dims
    if convention is None or dims.ndim < 3:
        return
    # a (Z, Y, X) volume sits on the last three dims (napari aligns layers on their trailing axes)
    first = dims.ndim - 3
    shown = [d - first for d in list(dims.order)[-3:]]
    if any(a < 0 for a in shown):  # a leading axis (time, channel) is on screen: not a volume view
        return
    orientation = camera_orientation(shown, convention)
    camera = _camera(viewer)
    if tuple(str(o) for o in camera.orientation) != orientation:
        camera.orientation = orientation


def _camera(viewer: Any) -> Any:
    """The viewer's camera: ``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def apply_radiological_view(viewer: Any, convention: str = RADIOLOGICAL) -> None:
    """Show RAS+ ``(Z, Y, X)`` volumes as radiology viewers do, by turning napari's camera only.

    Radiological (the default; 3D Slicer, ITK-SNAP, OHIF): axial with anterior up and the patient's
    right on the screen's left, coronal with superior up and the patient's right on the left,
    sagittal with superior up and anterior on the left. ``"neurological"`` puts the patient's right
    on the screen's right. The camera follows when the user rolls or transposes the dims or switches
    to 3D (the 3D view is never a mirror image). Layer data, scale, translate and the world
    coordinates (RAS mm) are untouched, so painting, the status bar and saved files are unaffected.

    Args:
        viewer: a ``napari.Viewer`` (or ``ViewerModel``).
        convention: ``"radiological"`` or ``"neurological"``.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown display convention {convention!r}; choose {' or '.join(CONVENTIONS)}")
    first_time = viewer not in _CONVENTION
    _CONVENTION[viewer] = convention
    if first_time:
        ref = weakref.ref(viewer)

        def follow(event: Any = None) -> None:
            v = ref()
            if v is not None:
                _orient(v)

        for name in ("order", "ndisplay", "ndim"):
            getattr(viewer.dims.events, name).connect(follow)
    _orient(viewer)


def _is_medical_volume(layer: Any) -> bool:
    return META_KEY in getattr(layer, "metadata", {}) and getattr(layer, "ndim", 0) == 3


def follow_medical_volumes(viewer: Any) -> None:
    """Turn on the radiological view as soon as ``viewer`` holds a volume read by napari-smp.

    Called when a widget of this plugin is created (and by the demo): napari's reader hook cannot
    reach the viewer, so the widgets do it. A volume is ours when it carries a ``VolumeMeta`` (the
    reader, the phantom sample and every layer our widgets derive from them). Calling it again, or
    after the user chose a convention, changes nothing.
    """
    if viewer in _FOLLOWED:
        return
    _FOLLOWED.add(viewer)
    if any(_is_medical_volume(ly) for ly in viewer.layers):
        if viewer not in _CONVENTION:
            apply_radiological_view(viewer)
        return
    ref = weakref.ref(viewer)

    def on_inserted(event: Any) -> None:
        v = ref()
        if v is None or not _is_medical_volume(event.value):
            return
        v.layers.events.inserted.disconnect(on_inserted)
        if v not in _CONVENTION:
            apply_radiological_view(v)

    viewer.layers.events.inserted.connect(on_inserted)


def follow_current_viewer() -> None:
    """:func:`follow_medical_volumes` on ``napari.current_viewer()``, if napari runs one; never raises.

    The reader calls it: the layers it returns reach that viewer right after, and the first volume of
    ours among them turns the view radiological (unless a convention was already chosen there).
    """
    try:
        import napari

        viewer = napari.current_viewer()
        if viewer is not None:
            follow_medical_volumes(viewer)
    except Exception:  # the display is a nicety: reading the file must never fail for it
        return
