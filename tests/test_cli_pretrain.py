"""``napari-smp pretrain``: a checkpoint a fine-tune can start from, and one-line errors."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_smp.cli import main
from napari_smp.config import ModelConfig
from napari_smp.engine.checkpoint import init_from_pretrained, is_pretrained_checkpoint


def _volume(path, seed=0, depth=8):
    rng = np.random.default_rng(seed)
    zyx = rng.normal(0, 1, (depth, 24, 24)).astype(np.float32)
    zyx[:, 6:16, 8:18] += 3.0
    nib.save(nib.Nifti1Image(zyx.transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), path)
    return path


def _tiny(*extra: str) -> list[str]:
    return ["--img-size", "32", "--width", "8", "--batch-size", "4", "--device", "cpu", *extra]


def test_pretrain_writes_a_checkpoint_that_initialises_a_fine_tune(tmp_path, capsys):
    a, b = _volume(tmp_path / "a.nii.gz", 0), _volume(tmp_path / "b.nii.gz", 1)
    out = tmp_path / "enc.safetensors"
    assert main(["pretrain", str(a), str(b), "--out", str(out), "--steps", "3", *_tiny()]) == 0
    assert "16 slices of 2 volume(s), 3 steps" in capsys.readouterr().out
    assert is_pretrained_checkpoint(out)
    model = init_from_pretrained(ModelConfig(num_classes=4), out)
    assert model.config.img_size == 32 and model.config.lite_width == 8 and model.config.num_classes == 4


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-smp pretrain: error:")
    return err[0]


@pytest.mark.parametrize("case", ["missing", "exists", "same", "macl-size", "budget"])
def test_pretrain_errors_are_one_line_and_write_nothing(tmp_path, capsys, case):
    vol = _volume(tmp_path / "v.nii.gz")
    out = tmp_path / "enc.safetensors"
    args = ["pretrain", str(vol), "--out", str(out), "--steps", "2", *_tiny()]
    expect = {
        "missing": "nope.nii.gz",
        "exists": "exists",
        "same": "also an input",
        "macl-size": "divisible by 128",
        "budget": "must be positive",
    }[case]
    if case == "missing":
        args[1] = str(tmp_path / "nope.nii.gz")
    elif case == "exists":
        out.write_bytes(b"keep me")
    elif case == "same":
        args[3] = str(vol)
    elif case == "macl-size":
        args += ["--method", "macl"]
    elif case == "budget":
        args += ["--time-budget", "0"]
    assert main(args) == 2
    assert expect in _one_line_error(capsys)
    if case == "exists":
        assert out.read_bytes() == b"keep me"
    else:
        assert not out.exists() or case == "same"
    assert not list(tmp_path.glob(".*.tmp"))
