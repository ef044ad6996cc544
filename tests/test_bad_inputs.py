"""The bad-input sweep: every verb of the command line given wrong files, wrong options and unsafe outputs.

Each case runs ``napari-smp`` in this process and asserts the contract of ARCHITECTURE.md: exit code 2
(or argparse's 2 for a usage mistake), exactly one line on stderr that names the problem, no traceback,
every file in the folder byte for byte as before (inputs and existing outputs), and no new file, not
even a temporary one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_smp.cli import main

SPACING_AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])


def _nifti(path: Path, zyx: np.ndarray, affine: np.ndarray = SPACING_AFFINE) -> Path:
    data = np.asarray(zyx)
    data = data.transpose(2, 1, 0) if data.ndim == 3 else data.T
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _labels() -> np.ndarray:
    lab = np.zeros((6, 24, 24), np.uint8)
    lab[1:5, 4:12, 5:15] = 1
    lab[2:4, 13:18, 10:20] = 2
    return lab


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.normal(0, 20, (6, 24, 24)) + 100 * _labels()).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with good and bad inputs of every kind (built once; each case works on a copy)."""
    from safetensors.torch import save_file

    from napari_smp.config import MemoryConfig, ModelConfig
    from napari_smp.engine.checkpoint import save_checkpoint, save_pretrained
    from napari_smp.model import build_model

    d = tmp_path_factory.mktemp("bad")
    image, labels = _image(), _labels()
    _nifti(d / "image.nii.gz", image)
    _nifti(d / "labels.nii.gz", labels)
    _nifti(d / "pred.nii.gz", np.roll(labels, 1, axis=2))
    _nifti(d / "image4d.nii.gz", np.stack([image, image], axis=-1).transpose(3, 2, 1, 0).T)
    _nifti(d / "image2d.nii.gz", image[0])
    nan = image.copy()
    nan[2, 3, 4] = np.nan
    _nifti(d / "nan.nii.gz", nan)
    _nifti(d / "complex.nii.gz", image.astype(np.complex64))
    _nifti(d / "fraction.nii.gz", labels.astype(np.float32) * 0.5)
    _nifti(d / "negative.nii.gz", labels.astype(np.int16) - 1)
    nan_labels = labels.astype(np.float32)
    nan_labels[0, 0, 0] = np.nan
    _nifti(d / "nanlabels.nii.gz", nan_labels)
    _nifti(d / "empty.nii.gz", np.zeros_like(labels))
    _nifti(d / "othershape.nii.gz", labels[:, :20])
    _nifti(d / "othergrid.nii.gz", labels, np.diag([1.2, 1.2, 3.75, 1.0]))
    _nifti(d / "bigvalue.nii.gz", labels.astype(np.uint16) * 40)  # label 80 for a 3-class checkpoint
    (d / "notes.txt").write_text("not an image", encoding="utf-8")
    (d / "fake.nii.gz").write_bytes(b"\x1f\x8b this is not gzip data")
    (d / "nodicom").mkdir()
    (d / "nodicom" / "readme.txt").write_text("no DICOM here", encoding="utf-8")

    config = ModelConfig(
        preset="lite", num_classes=3, img_size=32, lite_width=8, lite_depths=(1, 1, 1, 1),
        memory=MemoryConfig(slots=8, dim=16, decoder_dim=16),
    )  # fmt: skip
    model = build_model(config)
    save_checkpoint(d / "model.safetensors", model, config)
    save_pretrained(d / "encoder.safetensors", model, config, "supercl", ["encoder."])
    (d / "pickle.pt").write_bytes(b"\x80\x04\x95 a pickle stream")
    (d / "zip.pth").write_bytes(b"PK\x03\x04 a torch.save archive")
    (d / "truncated.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:200])
    save_file({"w": __import__("torch").zeros(2)}, str(d / "foreign.safetensors"))
    (d / "report.json").write_text('{"old": true}', encoding="utf-8")
    (d / "report.csv").write_text("old\n", encoding="utf-8")
    (d / "old.nii.gz").write_bytes((d / "labels.nii.gz").read_bytes())
    (d / "old.safetensors").write_bytes((d / "model.safetensors").read_bytes())

    for name, case_labels, affine in (
        ("ds_ok", labels, SPACING_AFFINE),
        ("ds_grid", labels, np.diag([1.2, 1.2, 3.75, 1.0])),
        ("ds_fraction", labels * 0.5, SPACING_AFFINE),
    ):
        root = d / name
        (root / "imagesTr").mkdir(parents=True)
        (root / "labelsTr").mkdir()
        for case in ("case1", "case2"):
            _nifti(root / "imagesTr" / f"{case}_0000.nii.gz", image)
            _nifti(root / "labelsTr" / f"{case}.nii.gz", case_labels, affine)
    root = d / "ds_nolabel"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    _nifti(root / "imagesTr" / "case1.nii.gz", image)
    (d / "ds_empty" / "imagesTr").mkdir(parents=True)
    (d / "ds_empty" / "labelsTr").mkdir()
    (d / "ds_flat").mkdir()
    _nifti(d / "ds_flat" / "case1.nii.gz", image)
    return d


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too) -> its content hash ("dir" for folders)."""
    return {
        str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
    }


# {d} is the case's folder
IMAGES_BAD = ["missing.nii.gz", "image4d.nii.gz", "image2d.nii.gz", "nan.nii.gz", "complex.nii.gz", "notes.txt",
              "fake.nii.gz", "nodicom"]  # fmt: skip
LABELS_BAD = ["missing.nii.gz", "fraction.nii.gz", "negative.nii.gz", "nanlabels.nii.gz", "othershape.nii.gz",
              "othergrid.nii.gz", "image4d.nii.gz", "notes.txt", "empty.nii.gz"]  # fmt: skip
CHECKPOINTS_BAD = ["missing.safetensors", "pickle.pt", "zip.pth", "truncated.safetensors", "foreign.safetensors",
                   "labels.nii.gz", "nodicom"]  # fmt: skip
RUN = ["--steps", "1", "--device", "cpu"]


def _cases() -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = []
    for bad in IMAGES_BAD:
        cases += [
            (f"segment image {bad}", ["segment", f"{{d}}/{bad}", "--checkpoint", "{d}/model.safetensors",
                                      "--out", "{d}/seg.nii.gz"]),
            (f"finetune image {bad}", ["finetune", f"{{d}}/{bad}", "{d}/labels.nii.gz", "--out", "{d}/m.safetensors",
                                       *RUN]),
            (f"pretrain volume {bad}", ["pretrain", f"{{d}}/{bad}", "--out", "{d}/e.safetensors", "--steps", "1"]),
            (f"pretrain second volume {bad}", ["pretrain", "{d}/image.nii.gz", f"{{d}}/{bad}", "--out",
                                               "{d}/e.safetensors", "--steps", "1"]),
        ]  # fmt: skip
    for bad in LABELS_BAD:
        cases.append((f"finetune labels {bad}", ["finetune", "{d}/image.nii.gz", f"{{d}}/{bad}", "--out",
                                                 "{d}/m.safetensors", *RUN]))  # fmt: skip
        if bad != "empty.nii.gz":  # an empty map is a fair prediction or ground truth to score
            cases += [(f"evaluate pred {bad}", ["evaluate", f"{{d}}/{bad}", "{d}/labels.nii.gz"]),
                      (f"evaluate gt {bad}", ["evaluate", "{d}/pred.nii.gz", f"{{d}}/{bad}"])]  # fmt: skip
    for bad in CHECKPOINTS_BAD + ["encoder.safetensors"]:
        cases.append((f"segment checkpoint {bad}", ["segment", "{d}/image.nii.gz", "--checkpoint", f"{{d}}/{bad}",
                                                    "--out", "{d}/seg.nii.gz"]))  # fmt: skip
    for bad in CHECKPOINTS_BAD:
        cases.append((f"finetune init {bad}", ["finetune", "{d}/image.nii.gz", "{d}/labels.nii.gz", "--init",
                                               f"{{d}}/{bad}", "--out", "{d}/m.safetensors", *RUN]))  # fmt: skip
    cases.append(("finetune init for fewer classes", ["finetune", "{d}/image.nii.gz", "{d}/bigvalue.nii.gz", "--init",
                                                       "{d}/model.safetensors", "--out", "{d}/m.safetensors", *RUN]))
    # outputs: existing, an input, a folder, a missing folder, a wrong extension
    outputs = {
        "segment": (["segment", "{d}/image.nii.gz", "--checkpoint", "{d}/model.safetensors", "--out"],
                    ["{d}/old.nii.gz", "{d}/image.nii.gz", "{d}/nodicom", "{d}/nofolder/seg.nii.gz", "{d}/seg.png",
                     "{d}/model.safetensors"]),
        "finetune": (["finetune", "{d}/image.nii.gz", "{d}/labels.nii.gz", *RUN, "--out"],
                     ["{d}/old.safetensors", "{d}/labels.nii.gz", "{d}/nodicom", "{d}/nofolder/m.safetensors",
                      "{d}/m.pt", "{d}/m.nii.gz"]),
        "pretrain": (["pretrain", "{d}/image.nii.gz", "--steps", "1", "--out"],
                     ["{d}/old.safetensors", "{d}/image.nii.gz", "{d}/nodicom", "{d}/nofolder/e.safetensors",
                      "{d}/e.pth"]),
        "train": (["train", "{d}/ds_ok", "--steps", "1", "--device", "cpu", "--out"],
                  ["{d}/old.safetensors", "{d}/nodicom", "{d}/nofolder/b.safetensors", "{d}/b.ckpt"]),
        "evaluate --json": (["evaluate", "{d}/pred.nii.gz", "{d}/labels.nii.gz", "--json"],
                            ["{d}/report.json", "{d}/pred.nii.gz", "{d}/labels.nii.gz", "{d}/nodicom",
                             "{d}/nofolder/r.json", "{d}/r.txt"]),
        "evaluate --csv": (["evaluate", "{d}/pred.nii.gz", "{d}/labels.nii.gz", "--csv"],
                           ["{d}/report.csv", "{d}/pred.nii.gz", "{d}/labels.nii.gz", "{d}/nodicom",
                            "{d}/nofolder/r.csv", "{d}/r.json"]),
    }  # fmt: skip
    for verb, (head, bads) in outputs.items():
        cases += [(f"{verb} output {bad}", [*head, bad]) for bad in bads]
    comp = ["complete", "{d}/image.nii.gz", "{d}/labels.nii.gz", "--no-network", "--out"]
    cases += [(f"complete output {bad}", [*comp, bad]) for bad in
              ["{d}/old.nii.gz", "{d}/labels.nii.gz", "{d}/nodicom", "{d}/nofolder/seg.nii.gz", "{d}/seg.png",
               "{d}/seg.dcm"]]  # fmt: skip
    cases += [(f"complete painting {bad}", ["complete", "{d}/image.nii.gz", f"{{d}}/{bad}", "--out",
                                            "{d}/seg.nii.gz", "--no-network"])
              for bad in ("empty.nii.gz", "othergrid.nii.gz", "othershape.nii.gz", "fraction.nii.gz")]  # fmt: skip
    cases += [("complete model-out is the output", [*comp, "{d}/seg.nii.gz", "--model-out", "{d}/seg.nii.gz"]),
              ("complete model-out exists", [*comp, "{d}/seg.nii.gz", "--model-out", "{d}/old.safetensors"]),
              ("complete init for fewer classes", ["complete", "{d}/image.nii.gz", "{d}/bigvalue.nii.gz", "--out",
                                                   "{d}/seg.nii.gz", "--init", "{d}/model.safetensors",
                                                   "--time-budget", "30", "--device", "cpu"])]  # fmt: skip
    cases.append(("evaluate json and csv the same file", ["evaluate", "{d}/pred.nii.gz", "{d}/labels.nii.gz",
                                                           "--json", "{d}/r.json", "--csv", "{d}/r.json"]))
    # options
    fine = ["finetune", "{d}/image.nii.gz", "{d}/labels.nii.gz", "--out", "{d}/m.safetensors", "--device", "cpu"]
    for opts in (["--batch-size", "0"], ["--batch-size", "-3"], ["--steps", "-1"], ["--time-budget", "0"],
                 ["--time-budget", "-5"], ["--time-budget", "nan"], ["--lr", "0"], ["--lr", "-1"], ["--img-size", "33"],
                 ["--img-size", "0"], ["--slices", "3,abc"], ["--slices", "99"], ["--slices", "-1"],
                 ["--preset", "huge"], ["--device", "tpu"], ["--slice-context", "9"], ["--norm", "zscore"],
                 ["--init", "{d}/model.safetensors", "--img-size", "64"], ["--lr-schedule", "cosine"]):
        cases.append((f"finetune {' '.join(opts)}", [*fine, *opts]))  # fmt: skip
    seg = ["segment", "{d}/image.nii.gz", "--checkpoint", "{d}/model.safetensors", "--out", "{d}/seg.nii.gz"]
    for opts in (["--batch-size", "0"], ["--device", "tpu"], ["--device", "cuda", "--require-device"]):
        cases.append((f"segment {' '.join(opts)}", [*seg, *opts]))
    pre = ["pretrain", "{d}/image.nii.gz", "--out", "{d}/e.safetensors"]
    for opts in (["--method", "simclr"], ["--steps", "0"], ["--batch-size", "1"], ["--time-budget", "0"],
                 ["--method", "macl", "--img-size", "96"], ["--img-size", "30"], ["--width", "0"]):
        cases.append((f"pretrain {' '.join(opts)}", [*pre, *opts]))  # fmt: skip
    train = ["train", "--out", "{d}/b.safetensors", "--steps", "1", "--device", "cpu"]
    for ds in ("missing", "ds_grid", "ds_fraction", "ds_nolabel", "ds_empty", "ds_flat", "image.nii.gz"):
        cases.append((f"train dataset {ds}", [train[0], f"{{d}}/{ds}", *train[1:]]))
    for opts in (["--val-fraction", "1.5"], ["--val-every", "0"], ["--batch-size", "0"]):
        cases.append((f"train {' '.join(opts)}", [train[0], "{d}/ds_ok", *train[1:], *opts]))
    ev = ["evaluate", "{d}/pred.nii.gz", "{d}/labels.nii.gz"]
    cases += [("evaluate convention", [*ev, "--convention", "scipy"]),
              ("evaluate other grids", ["evaluate", "{d}/pred.nii.gz", "{d}/othergrid.nii.gz"]),
              ("evaluate image as labels", ["evaluate", "{d}/image.nii.gz", "{d}/labels.nii.gz"])]  # fmt: skip
    cases += [("demo steps 0", ["demo", "--out", "{d}/demo", "--steps", "0"]),
              ("demo steps -1", ["demo", "--out", "{d}/demo", "--steps", "-1"]),
              ("demo time budget 0", ["demo", "--out", "{d}/demo", "--time-budget", "0"]),
              ("demo out is a file", ["demo", "--out", "{d}/labels.nii.gz"]),
              ("no verb", []), ("unknown verb", ["explode"]), ("segment without out", seg[:4])]  # fmt: skip
    return cases


CASES = _cases()


def test_the_sweep_is_large() -> None:
    assert len(CASES) >= 150
    assert len({name for name, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("argv", [argv for _, argv in CASES], ids=[name for name, _ in CASES])
def test_bad_input_gives_one_line_and_changes_nothing(argv, files, tmp_path, capsys):
    folder = tmp_path / "case"
    shutil.copytree(files, folder, symlinks=True)
    before = _snapshot(folder)
    rc = main([a.replace("{d}", str(folder)) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1, err  # one sentence (warnings would add lines)
    assert "Traceback" not in err and "error" in lines[0]
    assert str(folder) + "/." not in lines[0]  # never a temporary name
    assert _snapshot(folder) == before  # inputs and old outputs intact, nothing new, no temp file


def test_a_signal_during_a_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from napari_smp.cli import Terminated
    from napari_smp.io import read_labels, write_labels
    from napari_smp.io.formats import nifti

    target = _nifti(tmp_path / "seg.nii.gz", _labels())
    before = _snapshot(tmp_path)
    labels, meta = read_labels(target)
    real = nifti.write_nifti

    def interrupted(path, *args, **kwargs):
        real(path, *args, **kwargs)  # the temporary file is complete ...
        raise Terminated  # ... and SIGTERM arrives before the rename

    monkeypatch.setattr("napari_smp.io.write.write_nifti", interrupted)
    with pytest.raises(Terminated):
        write_labels(target, labels + 1, meta)
    assert _snapshot(tmp_path) == before


def test_evaluate_overwrite_replaces_only_with_the_flag(files, tmp_path, capsys):
    folder = tmp_path / "case"
    shutil.copytree(files, folder)
    argv = ["evaluate", str(folder / "pred.nii.gz"), str(folder / "labels.nii.gz"), "--json",
            str(folder / "report.json")]  # fmt: skip
    assert main(argv) == 2
    assert json.loads((folder / "report.json").read_text()) == {"old": True}
    assert main([*argv, "--overwrite"]) == 0
    assert "classes" in json.loads((folder / "report.json").read_text())
    capsys.readouterr()


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("after", [0.5, 3.0, 6.0])
def test_a_signal_ends_finetune_cleanly(signame, after, files, tmp_path):
    """Ctrl-C or SIGTERM at several moments (start-up, reading, training): one line, the old output intact."""
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "case"
    shutil.copytree(files, folder)
    out = folder / "old.safetensors"
    before = _snapshot(folder)
    argv = [sys.executable, "-m", "napari_smp.cli", "finetune", str(folder / "image.nii.gz"),
            str(folder / "labels.nii.gz"), "--out", str(out), "--overwrite", "--time-budget", "60", "--device", "cpu"]
    # a child of a background job inherits an ignored SIGINT (and Python then keeps ignoring it): give it
    # the default back, as a terminal's Ctrl-C would find it
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, encoding="utf-8",
                            errors="replace", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)  # a guard against a hang, not a timing claim
    code = {"SIGINT": 130, "SIGTERM": 143}[signame]
    assert proc.returncode in (code, -getattr(signal, signame)), err
    assert "Traceback" not in err
    if proc.returncode == code:
        assert [line for line in err.splitlines() if line.strip()][-1].startswith("napari-smp: ")
    assert _snapshot(folder) == before  # the old checkpoint untouched, nothing left behind


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_that_a_library_swallows_still_stops_finetune(signame, files, tmp_path, monkeypatch, capsys):
    """A library that catches everything while the signal lands (as some do on import) must not let the run
    go on to write its output: the signal is remembered and the training loop stops at its next step."""
    import os
    import signal

    import napari_smp.io as io

    folder = tmp_path / "case"
    shutil.copytree(files, folder)
    before = _snapshot(folder)
    real = io.read_volume
    swallowed = []

    def careless_reader(*args, **kwargs):
        try:
            os.kill(os.getpid(), getattr(signal, signame))
            for _ in range(1000):  # the handler runs between two bytecodes of this loop
                pass
        except BaseException as err:  # noqa: BLE001 - the careless library under test
            swallowed.append(type(err).__name__)
        return real(*args, **kwargs)

    monkeypatch.setattr(io, "read_volume", careless_reader)
    # under a background job (CI) SIGINT is ignored, and the CLI leaves it so: give Ctrl-C its terminal meaning
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rc = main(["finetune", str(folder / "image.nii.gz"), str(folder / "labels.nii.gz"), "--out",
                   str(folder / "new.safetensors"), "--time-budget", "30", "--device", "cpu"])  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, ignored)
    err = capsys.readouterr().err
    assert swallowed  # the signal did land inside the careless code
    assert rc == {"SIGINT": 130, "SIGTERM": 143}[signame], err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("napari-smp: ")
    assert _snapshot(folder) == before  # no checkpoint written, nothing left behind
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the old handlers are back
