"""File > Save Selected Layer(s) as .dcm: a Labels layer on a DICOM series becomes a DICOM SEG referencing it.

The series are the synthetic CT series of ``test_dicom_seg.py``; the SEG is read back with highdicom and
pydicom there (``_check_round_trip``: segment labels, referenced series and instances, frames on slices).
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from test_dicom_seg import ORIENTATIONS, SERIES, _check_round_trip, _ct_series, _labels_of

from napari_smp._napari_io import read_layers, write_labels_layer
from napari_smp.io import VolumeError, read_volume

FEATURES = {"index": [0, 1, 2, 7], "class": ["background", "liver", "Kidney_Left", "tumour core"]}


def test_the_writer_hook_writes_a_seg_named_from_the_layer_features(tmp_path: Path) -> None:
    files = _ct_series(tmp_path / "ct", ORIENTATIONS["axial"])
    (image, kwargs, kind), = read_layers(str(tmp_path / "ct"))
    assert kind == "image"
    labels = _labels_of(image)
    out = write_labels_layer(str(tmp_path / "seg.dcm"), labels, {"metadata": kwargs["metadata"],
                                                                 "features": FEATURES})
    assert out == [str(tmp_path / "seg.dcm")]
    _, meta = read_volume(tmp_path / "ct")
    _check_round_trip(tmp_path / "seg.dcm", labels, meta, {1: "liver", 2: "Kidney_Left", 7: "tumour core"}, files)


def test_labels_without_a_dicom_source_get_one_sentence_and_no_file(tmp_path: Path) -> None:
    labels = np.zeros((4, 8, 8), np.uint8)
    labels[1, 2:4, 2:4] = 1
    with pytest.raises(VolumeError, match=r"DICOM SEG needs a DICOM source series.*save them as \.nii\.gz"):
        write_labels_layer(str(tmp_path / "seg.dcm"), labels, {"scale": (2.0, 1.0, 1.0)})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gui
def test_save_selected_layer_as_dcm_from_a_viewer(make_napari_viewer, tmp_path: Path) -> None:
    """napari's own save path, on a layer painted with napari's new-labels button (no metadata of ours)."""
    _ct_series(tmp_path / "ct", ORIENTATIONS["flipped_rows"])
    viewer = make_napari_viewer()
    (image_layer,) = viewer.open(str(tmp_path / "ct"), plugin="napari-smp")
    labels = _labels_of(np.asarray(image_layer.data))
    painted = viewer.add_labels(labels, name="painted", scale=image_layer.scale, translate=image_layer.translate,
                                features=FEATURES)
    viewer.layers.selection = {painted}
    out = tmp_path / "painted.dcm"
    viewer.layers.save(str(out), selected=True, plugin="napari-smp")
    seg = hd.seg.segread(out)
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == [
        "liver", "Kidney_Left", "tumour core"]
    raw = pydicom.dcmread(out)
    assert raw.ReferencedSeriesSequence[0].SeriesInstanceUID == SERIES
    # labels on no DICOM grid are refused with the sentence, by each of napari's save paths; nothing is written
    viewer.add_labels(labels[:, :-1], name="elsewhere", scale=image_layer.scale, translate=image_layer.translate)
    viewer.layers.selection = {viewer.layers["elsewhere"]}
    sentence = "DICOM SEG needs a DICOM source series"
    with pytest.warns(UserWarning, match=sentence):  # napari picks the writer: its message quotes the warning
        assert viewer.layers.save(str(tmp_path / "elsewhere.dcm"), selected=True, plugin="napari-smp") == []
    from napari.plugins._npe2 import file_extensions_string_for_layers

    _, writers = file_extensions_string_for_layers([viewer.layers["elsewhere"]])
    ours = next(w for w in writers if w.plugin_name == "napari-smp")
    assert ".dcm" in ours.filename_extensions
    with pytest.raises(VolumeError, match=sentence):  # the dialog's filter picked our writer: the error is ours
        viewer.layers.save(str(tmp_path / "elsewhere.dcm"), selected=True, _writer=ours)
    assert not (tmp_path / "elsewhere.dcm").exists()
