"""``--largest-component`` and ``--min-island-ml`` on ``segment`` and ``complete``: known answers on files."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_smp.cli import main


def _save(path, zyx, affine=None):
    affine = np.diag([0.8, 0.8, 2.5, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(np.asarray(zyx).transpose(2, 1, 0), affine), path)
    return path


def _read(path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj).transpose(2, 1, 0)


@pytest.fixture
def painted_case(tmp_path):
    """A CT with two organs, painted on slices 1 and 4, where slice 1 also holds a 1-voxel speck of class 1."""
    rng = np.random.default_rng(0)
    labels = np.zeros((6, 20, 24), np.uint8)
    labels[1:5, 4:12, 5:15] = 1
    labels[2:4, 13:18, 10:20] = 2
    image = (rng.normal(0, 5, labels.shape) + 100 * labels).astype(np.float32)
    painted = np.zeros_like(labels)
    painted[[1, 4]] = labels[[1, 4]]
    painted[1, 18, 1] = 1  # the speck, far from the organ
    return _save(tmp_path / "ct.nii.gz", image), _save(tmp_path / "painted.nii.gz", painted), painted


def test_complete_largest_component_removes_the_speck_and_keeps_the_organ(painted_case, tmp_path, capsys):
    ct, paint, painted = painted_case
    raw, clean = tmp_path / "raw.nii.gz", tmp_path / "clean.nii.gz"
    assert main(["complete", str(ct), str(paint), "--out", str(raw), "--no-network"]) == 0
    assert main(["complete", str(ct), str(paint), "--out", str(clean), "--no-network", "--largest-component"]) == 0
    err = capsys.readouterr().err
    assert "clean-up removed" in err
    before, after = _read(raw), _read(clean)
    assert before[1, 18, 1] == 1 and after[1, 18, 1] == 0  # the speck becomes background
    changed = before != after
    assert (after[changed] == 0).all() and (before[changed] == 1).all()  # only class-1 voxels went, to 0
    np.testing.assert_array_equal(after[1, 4:12, 5:15], painted[1, 4:12, 5:15])  # the organ stays
    np.testing.assert_array_equal(after == 2, before == 2)  # a class in one piece is untouched
    np.testing.assert_allclose(nib.load(clean).affine, nib.load(raw).affine)


def test_complete_min_island_threshold_follows_the_spacing(painted_case, tmp_path, capsys):
    ct, paint, _ = painted_case
    # a voxel is 0.8 x 0.8 x 2.5 mm = 0.0016 mL: the speck (and what propagation made of it) is under 0.05 mL
    small, big = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    assert main(["complete", str(ct), str(paint), "--out", str(small), "--no-network", "--min-island-ml", "0.05"]) == 0
    assert main(["complete", str(ct), str(paint), "--out", str(big), "--no-network", "--min-island-ml", "0"]) == 0
    assert _read(small)[1, 18, 1] == 0 and _read(big)[1, 18, 1] == 1


def test_segment_cleanup_equals_the_engine_on_the_raw_output(tmp_path):
    from napari_smp.config import MemoryConfig, ModelConfig
    from napari_smp.engine.checkpoint import save_checkpoint
    from napari_smp.engine.cleanup import clean_labels
    from napari_smp.model import build_model

    config = ModelConfig(preset="lite", num_classes=3, img_size=32, lite_width=8, lite_depths=(1, 1, 1, 1),
                         memory=MemoryConfig(slots=8, dim=16, decoder_dim=16))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", build_model(config), config)
    rng = np.random.default_rng(1)
    ct = _save(tmp_path / "ct.nii.gz", rng.normal(0, 50, (5, 24, 24)).astype(np.float32))
    raw, clean = tmp_path / "raw.nii.gz", tmp_path / "clean.nii.gz"
    assert main(["segment", str(ct), "--checkpoint", str(ckpt), "--out", str(raw), "--device", "cpu"]) == 0
    assert main(["segment", str(ct), "--checkpoint", str(ckpt), "--out", str(clean), "--device", "cpu",
                 "--largest-component", "--min-island-ml", "0.01"]) == 0
    expected = clean_labels(_read(raw), (2.5, 0.8, 0.8), largest_component=True, min_island_ml=0.01).labels
    np.testing.assert_array_equal(_read(clean), expected)


def test_a_bad_island_volume_is_one_line_and_writes_nothing(painted_case, tmp_path, capsys):
    ct, paint, _ = painted_case
    out = tmp_path / "o.nii.gz"
    assert main(["complete", str(ct), str(paint), "--out", str(out), "--min-island-ml", "-2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mL of 0 or more" in err[0]
    assert not out.exists()
