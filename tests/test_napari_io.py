"""napari hooks: the reader picks Image or Labels with geometry, the writer lands on the source grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_smp._napari_io import get_reader, phantom_sample, read_layers, write_labels_layer
from napari_smp.io import META_KEY, VolumeError, VolumeMeta, read_labels


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.header.set_sform(affine, code=1)
    img.header.set_qform(affine, code=1)
    nib.save(img, str(path))
    return path


LPS = np.array([[-0.8, 0, 0, 20.0], [0, -0.7, 0, 30.0], [0, 0, 2.5, -12.0], [0, 0, 0, 1]])


@pytest.fixture
def ct_and_seg(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    ct = _save(tmp_path / "ct.nii.gz", rng.normal(0, 300, (8, 7, 6)).astype(np.float32), LPS)
    seg = np.zeros((8, 7, 6), np.float32)
    seg[2:5, 1:4, 2:4] = 2
    return ct, _save(tmp_path / "ct_seg.nii.gz", seg, LPS)


def test_get_reader_accepts_volumes_and_never_raises(tmp_path: Path, ct_and_seg: tuple[Path, Path]) -> None:
    ct, seg = ct_and_seg
    assert get_reader(str(ct)) is read_layers
    assert get_reader([str(ct), str(seg)]) is read_layers
    (tmp_path / "notes.txt").write_text("x")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader([str(ct), str(tmp_path / "notes.txt")]) is None
    assert get_reader(str(tmp_path)) is None  # a folder without DICOM files
    assert get_reader(str(tmp_path / "missing_dir" / "x.png")) is None
    assert get_reader(12345) is None  # nonsense input: declined, not raised


def test_reader_layers_and_geometry(ct_and_seg: tuple[Path, Path]) -> None:
    ct, seg = ct_and_seg
    (image,) = read_layers(str(ct))
    (labels,) = read_layers(str(seg))
    assert image[2] == "image" and labels[2] == "labels"
    assert image[0].dtype == np.float32 and labels[0].dtype == np.uint8
    assert image[0].shape == (6, 7, 8)
    assert image[1]["name"] == "ct" and labels[1]["name"] == "ct_seg"
    meta = labels[1]["metadata"][META_KEY]
    assert isinstance(meta, VolumeMeta)
    assert labels[1]["scale"] == pytest.approx((2.5, 0.7, 0.8))
    # translate is the world (S, A, R) position of voxel 0 of the flipped array
    far = LPS @ np.array([7, 6, 0, 1.0])
    assert labels[1]["translate"] == pytest.approx((far[2], far[1], far[0]))


def test_garbage_is_reported_by_the_reader_function(tmp_path: Path) -> None:
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti")
    reader = get_reader(str(tmp_path / "bad.nii.gz"))
    assert reader is not None
    with pytest.raises(VolumeError, match="bad.nii.gz"):
        reader(str(tmp_path / "bad.nii.gz"))


def test_probability_map_named_mask_opens_as_image(tmp_path: Path) -> None:
    path = _save(tmp_path / "prob_mask.nii.gz", np.linspace(0, 1, 27, dtype=np.float32).reshape(3, 3, 3), LPS)
    with pytest.warns(UserWarning, match="opened as an image"):
        (layer,) = read_layers(str(path))
    assert layer[2] == "image"


def test_writer_uses_meta_for_the_source_grid(tmp_path: Path, ct_and_seg: tuple[Path, Path]) -> None:
    _, seg = ct_and_seg
    ((data, kwargs, _),) = read_layers(str(seg))
    out = write_labels_layer(str(tmp_path / "edited.nii.gz"), data, {"metadata": kwargs["metadata"]})
    written, source = nib.load(out[0]), nib.load(seg)
    np.testing.assert_array_equal(written.affine, source.affine)
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(source.dataobj))


def test_writer_without_meta_uses_scale_and_translate(tmp_path: Path) -> None:
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1, 2, 3] = 1
    out = write_labels_layer(
        str(tmp_path / "new.nrrd"),
        labels,
        {"metadata": {}, "scale": (3.0, 0.5, 0.25), "translate": (10, 20, 30)},
    )
    again, meta = read_labels(out[0])
    np.testing.assert_array_equal(again, labels)
    assert meta.spacing == pytest.approx((3.0, 0.5, 0.25))
    assert meta.origin_zyx == pytest.approx((10.0, 20.0, 30.0))
    with pytest.raises(VolumeError, match="2D"):
        write_labels_layer(str(tmp_path / "flat.nii.gz"), labels[0], {"metadata": {}})


def test_reader_opens_a_ct_in_the_soft_tissue_window_and_mr_at_percentiles(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ct = np.full((10, 12, 14), -1000, np.int16)
    ct[2:-2, 2:-2, 2:-2] = rng.normal(40, 20, (6, 8, 10)).astype(np.int16)
    ((_, ct_kw, kind),) = read_layers(str(_save(tmp_path / "ct.nii.gz", ct, LPS)))
    assert kind == "image" and ct_kw["contrast_limits"] == (-160.0, 240.0)  # W 400 / L 40
    mr = rng.gamma(2.0, 100.0, (10, 12, 14)).astype(np.float32)
    ((data, mr_kw, _),) = read_layers(str(_save(tmp_path / "t1.nii.gz", mr, LPS)))
    np.testing.assert_allclose(mr_kw["contrast_limits"], np.percentile(data, (0.5, 99.5)), rtol=1e-6)
    ((_, seg_kw, kind),) = read_layers(str(_save(tmp_path / "t1_seg.nii.gz", (mr > 300).astype(np.uint8), LPS)))
    assert kind == "labels" and "contrast_limits" not in seg_kw


def test_phantom_sample_layers() -> None:
    (image, image_kw, image_type), (labels, label_kw, label_type) = phantom_sample()
    assert (image_type, label_type) == ("image", "labels")
    assert image.dtype == np.float32 and labels.dtype == np.uint8
    assert image_kw["scale"] == label_kw["scale"] == pytest.approx((4.0, 2.0, 2.0))
    assert label_kw["features"]["name"][1] == "liver"
    assert label_kw["metadata"][META_KEY].class_names[1] == "liver"
    assert image_kw["contrast_limits"] == (-160.0, 240.0)


@pytest.mark.gui
def test_viewer_opens_writes_and_samples(
    make_napari_viewer, tmp_path: Path, ct_and_seg: tuple[Path, Path]
) -> None:
    import napari

    ct, seg = ct_and_seg
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(ct), plugin="napari-smp")
    (labels,) = viewer.open(str(seg), plugin="napari-smp")
    assert isinstance(image, napari.layers.Image) and isinstance(labels, napari.layers.Labels)
    assert labels.data.dtype == np.uint8
    np.testing.assert_allclose(labels.scale, (2.5, 0.7, 0.8))
    np.testing.assert_allclose(image.scale, labels.scale)
    assert isinstance(labels.metadata[META_KEY], VolumeMeta)

    labels.data[0, 0, 0] = 5  # an edit that must survive the save
    out = tmp_path / "saved_seg.nii.gz"
    written = napari.save_layers(str(out), [labels], plugin="napari-smp")
    assert written == [str(out)]
    saved = nib.load(out)
    np.testing.assert_array_equal(saved.affine, nib.load(seg).affine)
    assert np.asarray(saved.dataobj)[7, 6, 0] == 5  # (z, y, x) = (0, 0, 0) is file voxel (7, 6, 0) in LPS

    sample = viewer.open_sample("napari-smp", "abdomen_phantom")
    assert [type(layer).__name__ for layer in sample] == ["Image", "Labels"]
    assert sample[1].data.dtype == np.uint8
    np.testing.assert_allclose(sample[1].scale, (4.0, 2.0, 2.0))
    assert sample[1].features["name"].iloc[1] == "liver"
