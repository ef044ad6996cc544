"""``napari-smp clusters``: figure, clusters.csv and K curve from a checkpoint; refusals in one line."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_smp.cli import main
from napari_smp.config import TrainConfig

sys.path.insert(0, str(Path(__file__).parent / "engine"))
from tiny import tiny_config, toy_volume  # noqa: E402


def _save(path, zyx):
    nib.save(nib.Nifti1Image(np.asarray(zyx).transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0])), path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from napari_smp.engine.checkpoint import save_checkpoint
    from napari_smp.engine.training.finetune import finetune

    d = tmp_path_factory.mktemp("cl")
    image, labels = toy_volume(depth=8, size=32)
    paint = np.zeros_like(labels)
    paint[[2, 5]] = labels[[2, 5]]
    ckpt = d / "m.safetensors"
    res = finetune(image, paint, config=tiny_config(warmup=2),
                   train=TrainConfig(steps=6, batch_size=2, augment=False, amp=False), out=ckpt)
    old = save_checkpoint(d / "old.safetensors", res.model, res.config)  # as written before K was kept
    return _save(d / "img.nii.gz", image), _save(d / "lab.nii.gz", labels), ckpt, old, d


def test_figure_table_and_k_curve(files, capsys):
    image, labels, ckpt, _, d = files
    out = d / "out"
    rc = main(["clusters", str(image), "--checkpoint", str(ckpt), "--labels", str(labels),
               "--slices", "1:6", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    for name in ("clusters.png", "clusters.svg", "clusters.csv", "k_history.png", "k_history.svg"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "clusters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "clusters.svg").read_bytes()[:2000]
    rows = list(csv.reader((out / "clusters.csv").open()))
    assert rows[0][:3] == ["cluster", "class", "purity"] and "share background" in rows[0]
    assert [r[0] for r in rows[1:]] == [str(c) for c in range(len(rows) - 1)]
    assert rows[1][1] == "background"
    text = capsys.readouterr().out
    assert "mean purity, never painted slices" in text and "decoder.stage1" in text
    # a second run does not overwrite without --overwrite; nothing else was left in the folder
    assert main(["clusters", str(image), "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["clusters.png", "clusters.svg", "clusters.csv", "k_history.png", "k_history.svg"])


def test_old_checkpoint_has_no_k_curve_and_bad_slices_are_refused(files, capsys):
    image, _, _, old, d = files
    out = d / "old_out"
    assert main(["clusters", str(image), "--checkpoint", str(old), "--slices", "3",
                 "--module", "encoder.stage3.0", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "keeps no K history" in err and not (out / "k_history.png").exists()
    assert (out / "clusters.csv").exists()
    assert main(["clusters", str(image), "--checkpoint", str(old), "--slices", "5:99", "--out", str(d / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outside the volume" in err[0] and not (d / "x").exists()
