"""File > Open alone (the plugin's reader, no widget docked) shows a CT in the radiological view.

Checked as ``test_view_display.py`` checks the widgets: a bright marker at the patient's
superior-anterior-right must land in the upper-left quadrant of the volume on the canvas.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from test_view_display import AXIAL, CORONAL, MARKER, ORIGIN, SAGITTAL, SHAPE, SPACING, _quadrant

pytestmark = pytest.mark.gui


def _marker_nifti(path):
    """The marker volume of test_view_display stored as a RAS NIfTI (x, y, z on disk)."""
    vol = np.full(SHAPE, 100.0, np.float32) + np.random.default_rng(0).normal(0, 5, SHAPE).astype(np.float32)
    vol[MARKER] = 1000.0  # noise elsewhere: two values only would open as a label map
    affine = np.eye(4)
    affine[:3, :3] = np.diag(SPACING[::-1])
    affine[:3, 3] = ORIGIN[::-1]
    nib.save(nib.Nifti1Image(vol.transpose(2, 1, 0), affine), str(path))
    return path


def test_opening_a_ct_through_the_reader_alone_shows_it_radiologically(make_napari_viewer, tmp_path):
    import napari

    from napari_smp._widgets._layers import view_convention

    viewer = make_napari_viewer(show=True)
    assert not viewer.window.dock_widgets  # no widget of ours: only the reader runs
    (layer,) = viewer.open(str(_marker_nifti(tmp_path / "ct.nii.gz")), plugin="napari-smp")
    assert isinstance(layer, napari.layers.Image)
    layer.contrast_limits = (0, 1000)
    assert view_convention(viewer) == "radiological"
    assert _quadrant(viewer, AXIAL, tmp_path / "axial.png") == "upper left"
    assert _quadrant(viewer, CORONAL, tmp_path / "coronal.png") == "upper left"
    assert _quadrant(viewer, SAGITTAL, tmp_path / "sagittal.png") == "upper left"
    # only the camera turned: the data and its place in the world are the file's
    np.testing.assert_allclose(layer.scale, SPACING)
    np.testing.assert_allclose(layer.translate, ORIGIN)
    assert layer.data[MARKER].min() == 1000.0


def test_a_convention_chosen_before_opening_is_kept(make_napari_viewer, tmp_path):
    from napari_smp._widgets._layers import apply_radiological_view, view_convention

    viewer = make_napari_viewer(show=True)
    apply_radiological_view(viewer, "neurological")
    (layer,) = viewer.open(str(_marker_nifti(tmp_path / "ct.nii.gz")), plugin="napari-smp")
    layer.contrast_limits = (0, 1000)
    assert view_convention(viewer) == "neurological"
    assert _quadrant(viewer, AXIAL, tmp_path / "axial.png") == "upper right"
