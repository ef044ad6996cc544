import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from tiny import toy_volume

from napari_smp.engine.checkpoint import load_checkpoint
from napari_smp.engine.training.dataset import split_cases
from napari_smp.io import VolumeError
from napari_smp.io.dataset import find_cases


def _dataset(root: Path, n: int = 3, nnunet_names: bool = False) -> Path:
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    (root / "imagesTs").mkdir()
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    for i in range(n):
        image, labels = toy_volume(depth=6, size=32, seed=i)
        # files are (X, Y, Z); our arrays are (Z, Y, X)
        suffix = "_0000" if nnunet_names else ""
        nib.save(
            nib.Nifti1Image(image.transpose(2, 1, 0), affine), root / "imagesTr" / f"case{i}{suffix}.nii.gz"
        )
        nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0), affine), root / "labelsTr" / f"case{i}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "bright": 1, "dark": 2}}))
    return root


def test_find_cases_msd_and_nnunet_names(tmp_path):
    cases, names = find_cases(_dataset(tmp_path / "a"))
    assert [c.name for c in cases] == ["case0", "case1", "case2"]
    assert names == {0: "background", 1: "bright", 2: "dark"}
    cases, _ = find_cases(_dataset(tmp_path / "b", nnunet_names=True))
    assert [c.name for c in cases] == ["case0", "case1", "case2"]


def test_dataset_errors(tmp_path):
    with pytest.raises(VolumeError, match="imagesTr"):
        find_cases(tmp_path)
    root = _dataset(tmp_path / "d")
    (root / "labelsTr" / "case1.nii.gz").unlink()
    with pytest.raises(VolumeError, match="case1"):
        find_cases(root)


def test_split_is_by_case_and_reproducible(tmp_path):
    cases, _ = find_cases(_dataset(tmp_path, n=3))
    tr, va = split_cases(cases, 0.34, seed=1)
    assert len(va) == 1 and len(tr) == 2 and not {c.name for c in tr} & {c.name for c in va}
    assert [c.name for c in split_cases(cases, 0.34, seed=1)[1]] == [c.name for c in va]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_torchrun_training(tmp_path):
    root = _dataset(tmp_path / "data")
    out = tmp_path / "best.safetensors"
    report = tmp_path / "report"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(Path(__file__).with_name("_ddp_worker.py")),
        str(root),
        str(out),
        str(report),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training on 2 process(es) (backend gloo" in proc.stdout
    # parameters laid out like their gradients: DDP copies nothing and warns of nothing
    assert "Grad strides do not match" not in proc.stderr, proc.stderr[-3000:]
    r0 = json.loads(Path(f"{report}.0.json").read_text())
    r1 = json.loads(Path(f"{report}.1.json").read_text())
    assert r0["steps"] == r1["steps"] == 4
    assert r0["seen"] == [1, 2, 3, 4] and r1["seen"] == []  # callbacks run on rank 0 only
    assert len(r0["val"]) == 1 and r0["val"][0] not in r0["train"]
    assert 0.0 <= r0["best"] <= 1.0
    # averaged gradients and one agreed learning rate: both ranks end with bit-identical weights
    w0, w1 = np.load(f"{report}.0.npy"), np.load(f"{report}.1.npy")
    assert w0.size > 1000 and np.array_equal(w0, w1)
    model, config = load_checkpoint(out)
    assert config.num_classes == 3 and config.class_names == ["background", "bright", "dark"]
