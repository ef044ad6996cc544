"""The command line's contract: outputs on the source grid, one-line errors, nothing half written."""

import json
import re
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from napari_smp.cli import main


def _save(path, zyx, affine=None):
    nib.save(
        nib.Nifti1Image(
            np.asarray(zyx).transpose(2, 1, 0), np.diag([0.8, 0.8, 2.5, 1.0]) if affine is None else affine
        ),
        path,
    )
    return path


def _labels(shape=(6, 20, 24)):
    lab = np.zeros(shape, np.uint8)
    lab[1:5, 4:12, 5:15] = 1
    lab[2:4, 13:18, 10:20] = 2
    return lab


def test_evaluate_prints_table_and_writes_json_csv(tmp_path, capsys):
    gt = _labels()
    pred = np.roll(gt, 1, axis=2)
    a, b = _save(tmp_path / "p.nii.gz", pred), _save(tmp_path / "g.nii.gz", gt)
    rc = main(["evaluate", str(a), str(b), "--json", str(tmp_path / "m.json"), "--csv", str(tmp_path / "m.csv")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "HD95" in out or "hd95" in out
    data = json.loads((tmp_path / "m.json").read_text())
    assert "mean" in json.dumps(data)
    assert (tmp_path / "m.csv").read_text().count("\n") >= 3


def test_same_labels_stored_lps_and_ras_score_dice_one(tmp_path, capsys):
    gt = _labels()
    ras = np.diag([0.8, 0.8, 2.5, 1.0])
    lps = ras.copy()
    lps[0, 0], lps[1, 1] = -0.8, -0.8
    lps[0, 3], lps[1, 3] = 0.8 * (gt.shape[2] - 1), 0.8 * (gt.shape[1] - 1)
    flipped = gt[:, ::-1, ::-1]  # the same voxels stored with x and y reversed
    _save(tmp_path / "lps.nii.gz", flipped, lps)
    _save(tmp_path / "ras.nii.gz", gt, ras)
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "lps.nii.gz"),
                str(tmp_path / "ras.nii.gz"),
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    text = (tmp_path / "m.json").read_text()
    assert "1.0" in text
    rows = json.loads(text)
    dices = [
        r["dice"]
        for r in (rows["classes"] if isinstance(rows, dict) and "classes" in rows else rows)
        if isinstance(r, dict) and "dice" in r
    ]
    assert dices and all(abs(d - 1.0) < 1e-12 for d in dices)


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "napari_smp.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )


@pytest.mark.parametrize("case", ["missing", "shape", "grid", "float", "negative", "4d", "2d", "garbage"])
def test_evaluate_errors_are_one_line(tmp_path, case):
    gt = _save(tmp_path / "gt.nii.gz", _labels())
    bad = tmp_path / "bad.nii.gz"
    if case == "shape":
        _save(bad, _labels((6, 20, 20)))
    elif case == "grid":
        _save(bad, _labels(), np.diag([1.0, 1.0, 2.5, 1.0]))
    elif case == "float":
        _save(bad, _labels().astype(np.float32) + 0.5)
    elif case == "negative":
        _save(bad, _labels().astype(np.int16) - 1)
    elif case == "4d":
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.uint8), np.eye(4)), bad)
    elif case == "2d":
        nib.save(nib.Nifti1Image(np.zeros((4, 4), np.uint8), np.eye(4)), bad)
    elif case == "garbage":
        bad.write_bytes(b"this is not a volume")
    proc = _run("evaluate", str(bad), str(gt), "--json", str(tmp_path / "out.json"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.json").exists()


def test_finetune_then_segment_writes_on_source_grid(tmp_path):
    rng = np.random.default_rng(0)
    lab = _labels((6, 24, 24))
    img = (rng.normal(0, 0.1, lab.shape) + lab).astype(np.float32)
    affine = np.array([[-0.8, 0, 0, 10], [0, 0.8, 0, -5], [0, 0, 2.5, 3], [0, 0, 0, 1]])  # LAS on disk
    _save(tmp_path / "img.nii.gz", img, affine)
    sparse = np.zeros_like(lab)
    sparse[2] = lab[2]
    _save(tmp_path / "paint.nii.gz", sparse, affine)
    ckpt = tmp_path / "m.safetensors"
    proc = _run(
        "finetune",
        str(tmp_path / "img.nii.gz"),
        str(tmp_path / "paint.nii.gz"),
        "--out",
        str(ckpt),
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 steps on 1 annotated slices" in proc.stdout
    out = tmp_path / "seg.nii.gz"
    proc = _run("segment", str(tmp_path / "img.nii.gz"), "--checkpoint", str(ckpt), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    seg = nib.load(out)
    np.testing.assert_allclose(seg.affine, affine)
    assert seg.shape == nib.load(tmp_path / "img.nii.gz").shape
    assert np.issubdtype(seg.get_data_dtype(), np.integer)
    # never overwrite without being asked, never write over an input
    again = _run("segment", str(tmp_path / "img.nii.gz"), "--checkpoint", str(ckpt), "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    onto_input = _run(
        "segment",
        str(tmp_path / "img.nii.gz"),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(tmp_path / "img.nii.gz"),
        "--overwrite",
    )
    assert onto_input.returncode == 2 and "also an input" in onto_input.stderr


def test_segment_refuses_pickle_checkpoint_and_forced_missing_device(tmp_path):
    img = _save(tmp_path / "img.nii.gz", np.zeros((3, 8, 8), np.float32))
    pkl = tmp_path / "evil.pt"
    pkl.write_bytes(b"\x80\x04\x95" + b"\x00" * 32)  # a pickle stream header
    proc = _run("segment", str(img), "--checkpoint", str(pkl), "--out", str(tmp_path / "o.nii.gz"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (tmp_path / "o.nii.gz").exists()


def test_no_annotation_error(tmp_path):
    img = _save(tmp_path / "img.nii.gz", np.zeros((3, 8, 8), np.float32))
    empty = _save(tmp_path / "lab.nii.gz", np.zeros((3, 8, 8), np.uint8))
    proc = _run("finetune", str(img), str(empty), "--out", str(tmp_path / "m.safetensors"), "--steps", "1")
    assert proc.returncode == 2 and "no annotated slice" in proc.stderr
    assert not (tmp_path / "m.safetensors").exists()


def test_help_for_every_command():
    for cmd in ("segment", "finetune", "evaluate", "train", "demo"):
        proc = _run(cmd, "--help")
        assert proc.returncode == 0 and "usage" in proc.stdout


def test_forced_missing_device_fails_clearly(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    img = _save(tmp_path / "img.nii.gz", np.zeros((3, 8, 8), np.float32))
    lab = _save(tmp_path / "lab.nii.gz", _labels((3, 8, 8)) * 0 + 1)
    proc = _run(
        "finetune",
        str(img),
        str(lab),
        "--out",
        str(tmp_path / "m.safetensors"),
        "--steps",
        "1",
        "--device",
        "cuda",
        "--require-device",
    )
    assert proc.returncode == 2 and "not available" in proc.stderr


def test_finetune_img_size_builds_the_model_at_that_size_and_refuses_bad_ones(tmp_path, capsys):
    from napari_smp.engine.checkpoint import load_checkpoint

    lab = _labels((6, 24, 24))
    img = _save(tmp_path / "img.nii.gz", lab.astype(np.float32))
    paint = np.zeros_like(lab)
    paint[2] = lab[2]
    paint = _save(tmp_path / "paint.nii.gz", paint)
    common = [str(img), str(paint), "--steps", "2", "--batch-size", "2", "--device", "cpu"]
    ckpt = tmp_path / "m64.safetensors"
    assert main(["finetune", *common, "--out", str(ckpt), "--img-size", "64"]) == 0
    model, config = load_checkpoint(ckpt)
    assert config.img_size == 64 and model.config.img_size == 64
    # the answer kept (engine/answer.py) is said, and is the one the checkpoint predicts with
    kept = {"finest": "finest head", "sum": "sum of heads"}[config.lite_prediction]
    assert f"answers with its {kept} (Dice on the painted slices" in capsys.readouterr().out
    odd = tmp_path / "m48.safetensors"
    assert main(["finetune", *common, "--out", str(odd), "--img-size", "48"]) == 2
    assert "argument --img-size: needs a positive multiple of 32" in capsys.readouterr().err and not odd.exists()
    again = tmp_path / "again.safetensors"
    assert main(["finetune", *common, "--out", str(again), "--init", str(ckpt), "--img-size", "96"]) == 2
    assert "--init keeps the architecture" in capsys.readouterr().err and not again.exists()
    banked = tmp_path / "banked.safetensors"
    assert main(["finetune", *common, "--out", str(banked), "--memory"]) == 0
    model, config = load_checkpoint(banked)
    assert config.use_memory and model.memory_modules() != []
    # lite's default is the network without the bank (docs/experiments/2026-12-02-one-slice-no-bank-default.md)
    model, config = load_checkpoint(ckpt)
    assert not config.use_memory and model.memory_modules() == []
    plain = tmp_path / "plain.safetensors"
    assert main(["finetune", *common, "--out", str(plain), "--no-memory"]) == 0
    assert load_checkpoint(plain)[1].use_memory is False
    capsys.readouterr()
    assert main(["finetune", *common, "--out", str(again), "--init", str(ckpt), "--memory"]) == 2
    assert "--init keeps the architecture" in capsys.readouterr().err and not again.exists()


def test_cli_messages_name_what_a_cli_user_can_do(tmp_path):
    """No message advises a Python keyword (allow_nan=True) to someone at a shell prompt."""
    image = np.random.default_rng(0).random((6, 20, 24)).astype(np.float32)
    image[2, 3, 4] = np.nan
    img, lab = _save(tmp_path / "nan.nii.gz", image), _save(tmp_path / "lab.nii.gz", _labels())
    for args in (["segment", str(img), "--checkpoint", str(tmp_path / "m.safetensors"), "--out",
                  str(tmp_path / "s.nii.gz")],
                 ["finetune", str(img), str(lab), "--out", str(tmp_path / "m.safetensors")],
                 ["pretrain", str(img), "--out", str(tmp_path / "p.safetensors")]):
        proc = _run(*args)
        assert proc.returncode == 2, proc.stderr
        assert "has 1 NaN voxels; fill them" in proc.stderr and "allow_nan" not in proc.stderr
        assert "save the volume again" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_time_budget_governs_unless_steps_are_given():
    from napari_smp.cli import build_parser
    from napari_smp.commands._common import train_config as _train_config
    from napari_smp.config import UNCAPPED_STEPS

    parse = build_parser().parse_args
    budget = _train_config(parse(["finetune", "a.nii.gz", "b.nii.gz", "--out", "m.safetensors", "--time-budget", "9"]))
    assert budget.steps is None and budget.step_cap == UNCAPPED_STEPS and budget.time_budget == 9
    capped = _train_config(parse(["finetune", "a", "b", "--out", "m", "--time-budget", "9", "--steps", "40"]))
    assert capped.step_cap == 40
    assert _train_config(parse(["finetune", "a", "b", "--out", "m"])).step_cap == 300
    assert _train_config(parse(["train", "d", "--out", "m"])).step_cap == 1000  # train's own default
    flips = parse(["finetune", "a", "b", "--out", "m"])
    assert flips.rot_flip is False and parse(["finetune", "a", "b", "--out", "m", "--rot-flip"]).rot_flip
    assert parse(["finetune", "a", "b", "--out", "m", "--no-rot-flip"]).rot_flip is False  # old scripts run
    assert _train_config(flips).soft_labels is True
    assert _train_config(parse(["train", "d", "--out", "m", "--no-soft-labels"])).soft_labels is False


def test_complete_writes_the_whole_volume_on_the_grid_and_keeps_the_painting(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = _labels()
    image = (rng.normal(0, 5, labels.shape) + 100 * labels).astype(np.float32)
    painted = np.zeros_like(labels)
    painted[[1, 4]] = labels[[1, 4]]
    a, b = _save(tmp_path / "ct.nii.gz", image), _save(tmp_path / "painted.nii.gz", painted)
    out = tmp_path / "seg.nii.gz"
    assert main(["complete", str(a), str(b), "--out", str(out), "--no-network"]) == 0
    printed = capsys.readouterr().out
    assert "propagation" in printed
    # where to paint next: an unpainted slice, named by its array index and its position in mm
    nxt = re.search(r"next: paint slice (\d+) next .* array slice \1, S = (-?[\d.]+) mm", printed)
    assert nxt is not None and int(nxt.group(1)) not in (1, 4)
    z = int(nxt.group(1))
    ras = nib.load(a).affine @ np.array([0, 0, z, 1])  # the file's (i, j, k): k is the array's z here
    assert float(nxt.group(2)) == pytest.approx(ras[2], abs=0.06)
    seg = nib.load(out)
    np.testing.assert_allclose(seg.affine, nib.load(a).affine)
    data = np.asarray(seg.dataobj).transpose(2, 1, 0)
    np.testing.assert_array_equal(data[[1, 4]], labels[[1, 4]])
    # between the painted slices class 1, painted on both sides, is found where it is (its quality on real
    # images is the benchmark's business); class 2 starts and ends between them, which no propagation knows
    truth = labels[2:4] == 1
    assert (data[2:4] == 1)[truth].mean() > 0.95
    assert main(["complete", str(a), str(b), "--out", str(out), "--no-network"]) == 2  # no --overwrite
    assert "exists" in capsys.readouterr().err


def test_complete_from_one_painted_slice_answers_with_propagation_and_says_why(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = _labels()
    image = (rng.normal(0, 5, labels.shape) + 100 * labels).astype(np.float32)
    painted = np.zeros_like(labels)
    painted[2] = labels[2]
    a, b = _save(tmp_path / "ct.nii.gz", image), _save(tmp_path / "painted.nii.gz", painted)
    out = tmp_path / "seg.nii.gz"
    # the network is asked for (the default) but a single slice gives it no share and no model is wanted:
    # nothing is trained, the result is written, and the note says how to bring the network in
    assert main(["complete", str(a), str(b), "--out", str(out), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "note: one painted slice holds structures, so the network is not pooled" in captured.err
    assert "wrote" in captured.out and "steps" not in captured.out
    data = np.asarray(nib.load(out).dataobj).transpose(2, 1, 0)
    np.testing.assert_array_equal(data[2], labels[2])


# ---- scribbles and corrections (issue 29)


def _scribble_files(tmp_path, background=9):
    """A CT-like image and scribbles on it: strokes inside both boxes, background strokes (label 9) around."""
    rng = np.random.default_rng(0)
    labels = _labels()
    image = (rng.normal(0, 5, labels.shape) + 100 * labels).astype(np.float32)
    scrib = np.zeros_like(labels)
    scrib[2, 6:10, 7:13] = 1
    scrib[2, 14:17, 12:18] = 2
    scrib[2, 1, :] = background  # a background stroke across the top, and a coronal one through all slices
    scrib[:, 19, :] = background
    return labels, _save(tmp_path / "ct.nii.gz", image), _save(tmp_path / "scrib.nii.gz", scrib), scrib


def test_complete_with_scribbles_round_trip(tmp_path, capsys):
    labels, a, b, scrib = _scribble_files(tmp_path)
    out, model = tmp_path / "seg.nii.gz", tmp_path / "m.safetensors"
    argv = ["complete", str(a), str(b), "--out", str(out), "--model-out", str(model), "--scribbles",
            "--background-label", "9", "--time-budget", "6", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "propagation" in captured.out
    # slice 2 has an axial background stroke and both structures': grown into a whole slice; the coronal
    # background stroke through every slice guides nothing but stays marked
    assert "note: scribbles: the strokes of 1 axial slice (" in captured.err
    assert "marked pixels on other slices are kept as marked" in captured.err
    data = np.asarray(nib.load(out).dataobj).transpose(2, 1, 0)
    assert data.shape == labels.shape and 9 not in np.unique(data)  # the background label is written as 0
    marked = scrib != 0
    np.testing.assert_array_equal(data[marked], np.where(scrib == 9, 0, scrib)[marked])
    assert model.exists()


def test_finetune_with_scribbles_counts_the_marked_pixels(tmp_path, capsys):
    _, a, b, scrib = _scribble_files(tmp_path)
    ckpt = tmp_path / "m.safetensors"
    argv = ["finetune", str(a), str(b), "--out", str(ckpt), "--scribbles", "--background-label", "9",
            "--steps", "2", "--batch-size", "2", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert f"2 steps on {np.count_nonzero(scrib):,} scribbled pixels of 6 slices" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scribbles"], "--scribbles needs --background-label B"),
        (["--scribbles", "--background-label", "0"], "must be a positive label value"),
        (["--scribbles", "--background-label", "5"], "no background mark \\(label 5\\)"),
        (["--background-label", "9"], "--background-label goes with --scribbles"),
    ],
)
@pytest.mark.parametrize("command", ["complete", "finetune"])
def test_bad_scribbles_get_one_line_and_write_nothing(tmp_path, capsys, flags, message, command):
    _, a, b, _ = _scribble_files(tmp_path)
    out = tmp_path / ("seg.nii.gz" if command == "complete" else "m.safetensors")
    assert main([command, str(a), str(b), "--out", str(out), *flags, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not out.exists()


def test_complete_init_with_a_class_the_model_lacks_is_one_line(tmp_path, capsys):
    from napari_smp.config import MemoryConfig, ModelConfig, TrainConfig
    from napari_smp.engine.training import finetune

    labels, a, _, _ = _scribble_files(tmp_path)
    image = np.asarray(nib.load(a).dataobj).transpose(2, 1, 0)
    only_one = np.where(labels == 1, 1, 0).astype(np.uint8)
    only_one[[0, 5]] = 0
    tiny = ModelConfig(img_size=32, lite_width=8, lite_depths=(1, 1, 1, 1), use_memory=False, memory=MemoryConfig())
    ckpt = finetune(image, only_one, config=tiny, out=tmp_path / "m.safetensors",
                    train=TrainConfig(steps=1, batch_size=2, device="cpu", amp=False)).path  # fmt: skip
    # slices 1 and 3 painted: class 2 (on slices 2-3 only) is new to the model
    painted = _save(tmp_path / "painted.nii.gz", np.where(np.isin(np.arange(6), [1, 3])[:, None, None], labels, 0))
    out = tmp_path / "seg.nii.gz"
    argv = ["complete", str(a), str(painted), "--out", str(out), "--init", str(ckpt), "--time-budget", "10"]
    assert main([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "label value 2, which the model does not know" in err[0]
    assert not out.exists()


# ---- correcting an existing segmentation (complete --start)


def test_complete_start_carries_a_correction_through_an_existing_segmentation(tmp_path, capsys):
    rng = np.random.default_rng(0)
    truth = np.zeros((12, 20, 24), np.uint8)
    truth[1:11, 4:12, 5:15] = 1
    truth[2:10, 13:18, 10:20] = 2
    image = (rng.normal(0, 5, truth.shape) + np.choose(truth, [0.0, 100.0, -100.0])).astype(np.float32)
    tool = truth.copy()
    tool[4:8][tool[4:8] == 2] = 0  # another tool missed organ 2 on slices 4-7
    fix = np.zeros_like(truth)
    fix[6] = truth[6]
    a, seg = _save(tmp_path / "ct.nii.gz", image), _save(tmp_path / "tool.nii.gz", tool)
    b, out = _save(tmp_path / "fix.nii.gz", fix), tmp_path / "out.nii.gz"
    assert main(["complete", str(a), str(b), "--start", str(seg), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    data = np.asarray(nib.load(out).dataobj).transpose(2, 1, 0)
    for z in range(4, 8):
        got, want = data[z] == 2, truth[z] == 2
        assert 2 * (got & want).sum() / (got.sum() + want.sum()) > 0.85
    np.testing.assert_array_equal(data[:3], tool[:3])
    # refused before any work: a network option, the segmentation as the output, nothing corrected
    for argv, message in (
        (["--init", str(seg)], "drop --init"),
        (["--overwrite"], "is also an input"),
    ):
        target = seg if message == "is also an input" else tmp_path / "x.nii.gz"
        assert main(["complete", str(a), str(b), "--start", str(seg), "--out", str(target), *argv]) != 0
        assert message in capsys.readouterr().err
        assert not (tmp_path / "x.nii.gz").exists()
    assert main(["complete", str(a), str(seg), "--start", str(seg), "--out", str(tmp_path / "y.nii.gz")]) != 0
    assert "corrects nothing" in capsys.readouterr().err and not (tmp_path / "y.nii.gz").exists()
    np.testing.assert_array_equal(np.asarray(nib.load(seg).dataobj).transpose(2, 1, 0), tool)  # the input is intact


def test_cluster_bank_builds_a_stage_one_class_tied_bank_and_is_refused_where_it_cannot_apply(tmp_path, capsys):
    from napari_smp.engine.checkpoint import load_checkpoint

    lab = _labels((6, 24, 24))
    img = _save(tmp_path / "img.nii.gz", lab.astype(np.float32))
    paint = np.zeros_like(lab)
    paint[[1, 4]] = lab[[1, 4]]
    paint = _save(tmp_path / "paint.nii.gz", paint)
    common = [str(img), str(paint), "--steps", "2", "--batch-size", "2", "--device", "cpu"]
    ckpt = tmp_path / "clusters.safetensors"
    assert main(["finetune", *common, "--out", str(ckpt), "--img-size", "64", "--cluster-bank"]) == 0
    model, config = load_checkpoint(ckpt)
    assert config.use_memory and config.lite_memory_stages == (1,)
    assert config.memory.tied_writes and config.memory.prototype_loss > 0 and config.memory.bank_init == "labels"
    assert model.memory_modules() and all("stage1" in name for name, _ in model.memory_modules())
    capsys.readouterr()
    again = tmp_path / "again.safetensors"
    assert main(["finetune", *common, "--out", str(again), "--cluster-bank", "--no-memory"]) == 2
    assert "cannot go with --no-memory" in capsys.readouterr().err and not again.exists()
    assert main(["finetune", *common, "--out", str(again), "--init", str(ckpt), "--cluster-bank"]) == 2
    assert "--init keeps the architecture" in capsys.readouterr().err and not again.exists()
    seg = tmp_path / "seg.nii.gz"
    assert main(["complete", str(img), str(paint), "--out", str(seg), "--no-network", "--cluster-bank"]) == 2
    assert "--cluster-bank builds a new network" in capsys.readouterr().err and not seg.exists()
    assert main(["complete", str(img), str(paint), "--out", str(seg), "--start", str(paint), "--cluster-bank"]) == 2
    assert "drop --cluster-bank" in capsys.readouterr().err and not seg.exists()
