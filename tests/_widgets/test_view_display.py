"""What a radiologist sees first: radiological orientation on a real canvas, CT windows one click away.

The orientation is checked where it matters, on the pixels of the canvas: a bright marker at the
patient's superior-anterior-right (high index on every axis of a RAS+ ``(Z, Y, X)`` array) must be in
the upper-left quadrant of the volume on screen in the axial, coronal and sagittal views.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.gui

SHAPE, SPACING, ORIGIN = (30, 50, 70), (2.0, 1.0, 1.0), (-40.0, 12.0, -35.0)
MARKER = (slice(22, 28), slice(38, 46), slice(52, 64))  # superior, anterior, the patient's right
CENTRE = (50.0 - 40.0, 42.0 + 12.0, 58.0 - 35.0)  # world (S, A, R) mm of the marker's middle
AXIAL, CORONAL, SAGITTAL = (0, 1, 2), (1, 0, 2), (2, 0, 1)  # dims.order: the last two are on screen


def _marker_volume(viewer):
    from napari_smp.io.meta import META_KEY, VolumeMeta

    vol = np.full(SHAPE, 100.0, np.float32)
    vol[MARKER] = 1000.0
    affine = np.eye(4)
    affine[:3, :3] = np.diag(SPACING)
    affine[:3, 3] = ORIGIN
    meta = VolumeMeta(spacing=SPACING, affine=affine, source_affine=affine, source_shape=SHAPE[::-1])
    return viewer.add_image(vol, name="ct", scale=SPACING, translate=ORIGIN, contrast_limits=(0, 1000),
                            metadata={META_KEY: meta})


def _quadrant(viewer, order, path: Path) -> str:
    """Where the marker is in the volume's on-screen extent: 'upper left', 'lower right'..."""
    viewer.dims.order = order
    viewer.dims.point = CENTRE
    viewer.reset_view()
    shot = viewer.screenshot(str(path), canvas_only=True)[..., 0].astype(float)
    body = np.argwhere(shot > 20)  # the volume (grey) and the marker (white) on black
    marker = np.argwhere(shot > 200)
    assert len(marker) > 50 and len(body) > 10 * len(marker), f"nothing drawn in {path}"
    mid = (body.min(0) + body.max(0)) / 2
    row, col = marker.mean(0)
    return f"{'upper' if row < mid[0] else 'lower'} {'left' if col < mid[1] else 'right'}"


def test_marker_lands_where_a_radiologist_expects(make_napari_viewer, tmp_path):
    from napari_smp._widgets._layers import apply_radiological_view

    viewer = make_napari_viewer(show=True)
    layer = _marker_volume(viewer)
    before = layer.data.copy()
    # napari's own default, for contrast: anterior down and the patient's right on the right
    assert _quadrant(viewer, AXIAL, tmp_path / "napari_axial.png") == "lower right"

    apply_radiological_view(viewer)
    assert _quadrant(viewer, AXIAL, tmp_path / "radiological_axial.png") == "upper left"
    assert _quadrant(viewer, CORONAL, tmp_path / "radiological_coronal.png") == "upper left"
    assert _quadrant(viewer, SAGITTAL, tmp_path / "radiological_sagittal.png") == "upper left"

    apply_radiological_view(viewer, "neurological")  # only left and right swap
    assert _quadrant(viewer, AXIAL, tmp_path / "neurological_axial.png") == "upper right"
    assert _quadrant(viewer, CORONAL, tmp_path / "neurological_coronal.png") == "upper right"
    assert _quadrant(viewer, SAGITTAL, tmp_path / "neurological_sagittal.png") == "upper left"

    # nothing about the data or its place in the world changed
    np.testing.assert_array_equal(layer.data, before)
    np.testing.assert_allclose(layer.scale, SPACING)
    np.testing.assert_allclose(layer.translate, ORIGIN)
    np.testing.assert_allclose(layer.world_to_data(CENTRE), (25, 42, 58))


def test_3d_view_follows_the_convention_without_mirroring(make_napari_viewer):
    from napari_smp._widgets._layers import apply_radiological_view

    viewer = make_napari_viewer()
    _marker_volume(viewer)
    apply_radiological_view(viewer)
    viewer.dims.ndisplay = 3
    assert tuple(map(str, viewer.scene.camera.orientation)) == ("away", "up", "left")  # seen from the feet
    viewer.dims.ndisplay = 2
    viewer.dims.order = SAGITTAL
    assert tuple(map(str, viewer.scene.camera.orientation))[1:] == ("up", "left")


def test_a_plugin_widget_turns_the_view_on_for_volumes_read_by_the_plugin(make_napari_viewer, tmp_path):
    """Metrics from the Plugins menu, then File > Open of a CT through our reader."""
    import napari

    from napari_smp._widgets._layers import view_convention

    plain = make_napari_viewer()
    plain.window.add_plugin_dock_widget("napari-smp", "Metrics")
    plain.add_image(np.zeros((4, 5, 6), np.float32))  # not a medical volume of ours: napari's default
    assert view_convention(plain) is None
    assert tuple(map(str, plain.scene.camera.orientation)) == ("towards", "down", "right")

    viewer = make_napari_viewer()
    viewer.window.add_plugin_dock_widget("napari-smp", "Metrics")
    ct = np.full((6, 7, 8), -1000, np.int16)
    ct[1:-1, 1:-1, 1:-1] = 40
    affine = np.diag([0.8, 0.7, 2.5, 1.0])
    nib.save(nib.Nifti1Image(ct, affine), str(tmp_path / "ct.nii.gz"))
    (image,) = viewer.open(str(tmp_path / "ct.nii.gz"), plugin="napari-smp")
    assert isinstance(image, napari.layers.Image)
    assert view_convention(viewer) == "radiological"
    assert tuple(map(str, viewer.scene.camera.orientation))[1:] == ("up", "left")
    assert tuple(image.contrast_limits) == (-160.0, 240.0)


def test_saved_labels_still_land_on_the_source_grid(make_napari_viewer, tmp_path):
    import napari

    from napari_smp._widgets._layers import apply_radiological_view

    lps = np.array([[-0.8, 0, 0, 20.0], [0, -0.7, 0, 30.0], [0, 0, 2.5, -12.0], [0, 0, 0, 1]])
    seg = np.zeros((8, 7, 6), np.uint8)
    nib.save(nib.Nifti1Image(seg, lps), str(tmp_path / "ct_seg.nii.gz"))
    viewer = make_napari_viewer()
    apply_radiological_view(viewer)
    (labels,) = viewer.open(str(tmp_path / "ct_seg.nii.gz"), plugin="napari-smp")
    assert labels.data.shape == (6, 7, 8)  # (Z, Y, X) RAS+, not flipped for the display
    labels.data[0, 0, 0] = 3  # inferior, posterior, the patient's left corner
    out = tmp_path / "saved_seg.nii.gz"
    napari.save_layers(str(out), [labels], plugin="napari-smp")
    saved = nib.load(out)
    np.testing.assert_array_equal(saved.affine, nib.load(tmp_path / "ct_seg.nii.gz").affine)
    assert np.asarray(saved.dataobj)[7, 6, 0] == 3  # file voxel (i, j, k) = (7, 6, 0) in LPS storage


def test_view_controls_set_windows_and_the_convention(make_napari_viewer):
    from napari_smp._widgets._controls import ViewControls
    from napari_smp._widgets._layers import view_convention

    viewer = make_napari_viewer()
    controls = ViewControls(viewer)
    assert controls.set_window("lung") is None  # no image yet: a notification, nothing else
    rng = np.random.default_rng(0)
    ct = np.full((6, 20, 20), -1000.0, np.float32)
    ct[:, 4:16, 4:16] = rng.normal(40, 10, (6, 12, 12))
    layer = viewer.add_image(ct, name="ct")
    mr = viewer.add_image(rng.gamma(2.0, 100.0, (6, 20, 20)).astype(np.float32), name="mr")
    viewer.layers.selection.active = layer

    def choose(text: str) -> None:
        index = next(i for i in range(controls.window_combo.count())
                     if controls.window_combo.itemText(i).startswith(text))
        controls.window_combo.setCurrentIndex(index)
        controls.window_combo.activated.emit(index)  # what a click on the entry sends

    choose("lung")
    assert tuple(layer.contrast_limits) == (-1350.0, 150.0)
    choose("bone")
    assert tuple(layer.contrast_limits) == (-500.0, 1300.0)
    choose("brain")
    assert tuple(layer.contrast_limits) == (0.0, 80.0)
    choose("auto")  # a CT: back to soft tissue
    assert tuple(layer.contrast_limits) == (-160.0, 240.0)
    viewer.layers.selection.active = mr
    choose("auto")  # an MR: its percentiles
    np.testing.assert_allclose(mr.contrast_limits, np.percentile(mr.data, (0.5, 99.5)), rtol=1e-6)
    assert tuple(layer.contrast_limits) == (-160.0, 240.0)  # the other layer is untouched

    controls.convention_combo.setCurrentText("neurological")
    assert view_convention(viewer) == "neurological"
    assert tuple(map(str, viewer.scene.camera.orientation))[1:] == ("up", "right")
    controls.convention_combo.setCurrentText("radiological")
    assert tuple(map(str, viewer.scene.camera.orientation))[1:] == ("up", "left")


def test_the_demo_docks_the_view_controls(make_napari_viewer):
    from napari_smp._widgets._controls import ViewControls
    from napari_smp._widgets.demo_viewer import dock_view_controls

    viewer = make_napari_viewer()
    controls = dock_view_controls(viewer)
    assert isinstance(controls, ViewControls)
    assert viewer.window.dock_widgets["View"] is controls
