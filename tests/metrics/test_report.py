"""evaluate_labels: per-class rows, NaN-aware mean, JSON/CSV round trips, the terminal table."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from medpy.metric import binary as medpy_binary

from napari_smp.metrics import ShapeMismatchError
from napari_smp.metrics.report import EvaluationReport, evaluate_labels, per_slice_dice

SPACING = (3.0, 0.8, 0.8)
NAMES = {1: "liver", 2: "spleen", 3: "left kidney"}


@pytest.fixture
def volumes() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((8, 20, 20), dtype=np.uint8)
    gt[2:6, 3:10, 3:10] = 1
    gt[1:5, 12:18, 12:18] = 2
    pred = np.zeros_like(gt)
    pred[2:6, 4:11, 3:10] = 1  # shifted liver
    pred[1:5, 12:18, 12:17] = 2  # slightly small spleen
    pred[6, 1:3, 15:18] = 3  # a kidney that the ground truth lacks
    return pred, gt


@pytest.fixture
def report(volumes) -> EvaluationReport:
    pred, gt = volumes
    return evaluate_labels(pred, gt, SPACING, class_names=NAMES)


def test_rows_match_medpy_and_carry_names(volumes, report) -> None:
    pred, gt = volumes
    assert [r.label for r in report.rows] == [1, 2, 3]
    assert [r.name for r in report.rows] == ["liver", "spleen", "left kidney"]
    for row in report.rows[:2]:
        p, g = pred == row.label, gt == row.label
        assert row.dice == pytest.approx(medpy_binary.dc(p, g))
        assert row.hd95_mm == pytest.approx(medpy_binary.hd95(p, g, SPACING))
        assert row.hd_mm == pytest.approx(medpy_binary.hd(p, g, SPACING))
        assert row.assd_mm == pytest.approx(medpy_binary.assd(p, g, SPACING))
        assert (row.pred_voxels, row.gt_voxels) == (int(p.sum()), int(g.sum()))
    kidney = report.rows[2]
    assert kidney.note == "gt empty" and kidney.dice == 0.0 and math.isnan(kidney.hd95_mm)


def test_mean_is_nan_aware_and_counts_classes(report) -> None:
    m = report.mean
    assert m.dice == pytest.approx(np.mean([r.dice for r in report.rows]))  # Dice 0 counts
    assert m.hd95_mm == pytest.approx(np.mean([r.hd95_mm for r in report.rows[:2]]))  # NaN does not
    assert m.counts == {"dice": 3, "hd95_mm": 2, "hd_mm": 2, "assd_mm": 2}
    assert m.note == "dice 3/3, distances 2/3"


def test_json_parses_back_with_null_for_undefined(report) -> None:
    data = json.loads(report.to_json())
    assert data["convention"] == "medpy" and data["spacing_mm"] == list(SPACING)
    assert data["shape"] == [8, 20, 20]
    assert [c["name"] for c in data["classes"]] == list(NAMES.values())
    assert data["classes"][0]["hd95_mm"] == pytest.approx(report.rows[0].hd95_mm, rel=1e-15)
    assert data["classes"][2]["hd95_mm"] is None and data["classes"][2]["note"] == "gt empty"
    assert data["mean"]["counts"]["hd95_mm"] == 2


def test_csv_parses_back_to_the_same_numbers(report) -> None:
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [r["label"] for r in rows] == ["1", "2", "3", "mean"]
    for parsed, row in zip(rows[:3], report.rows, strict=True):
        for metric in ("dice", "hd95_mm", "hd_mm", "assd_mm"):
            value = float(parsed[metric])
            expected = getattr(row, metric)
            assert (math.isnan(value) and math.isnan(expected)) or value == expected
        assert int(parsed["gt_voxels"]) == row.gt_voxels and parsed["note"] == row.note
    assert float(rows[3]["dice"]) == report.mean.dice


def test_table_is_aligned_and_names_the_classes(report) -> None:
    text = report.format_table()
    lines = text.splitlines()
    for name in NAMES.values():
        assert name in text
    assert "medpy" in lines[0] and "gt empty" in text and "mean" in lines[-1]
    assert len({len(line) for line in lines[1:] if "-" * 5 in line}) == 1  # both rules equally wide
    header = lines[1]
    # right-aligned number columns end where their header ends
    end = header.index("hd95 mm") + len("hd95 mm")
    liver = next(line for line in lines if "liver" in line)
    assert liver[end - 1].isdigit() and liver[end] == " "


def test_monai_convention_and_labels_are_passed_through(volumes) -> None:
    pred, gt = volumes
    medpy_report = evaluate_labels(pred, gt, SPACING, labels=[1])
    monai_report = evaluate_labels(pred, gt, SPACING, convention="monai", labels=[1])
    assert [r.label for r in monai_report.rows] == [1]
    assert monai_report.rows[0].name == "class 1" and monai_report.convention == "monai"
    assert monai_report.rows[0].hd95_mm >= medpy_report.rows[0].hd95_mm


def test_shape_mismatch_raises(volumes) -> None:
    pred, gt = volumes
    with pytest.raises(ShapeMismatchError):
        evaluate_labels(pred[:-1], gt, SPACING)
    with pytest.raises(ShapeMismatchError):
        per_slice_dice(pred[:-1], gt, 1)


def test_per_slice_dice_by_hand(volumes) -> None:
    pred, gt = volumes
    per_slice = per_slice_dice(pred, gt, 1)
    assert per_slice.shape == (8,)
    assert np.isnan(per_slice[[0, 1, 6, 7]]).all()
    # each liver slice: 7x7 squares shifted one row -> 6x7 shared
    np.testing.assert_allclose(per_slice[2:6], 2 * 42 / 98)
    assert per_slice_dice(pred, gt, 3)[6] == 0.0


def test_evaluate_imports_neither_torch_nor_qt() -> None:
    heavy = "{'torch', 'qtpy', 'napari'}"
    code = f"import sys, napari_smp.metrics.report; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", errors="replace", check=True
    )
    assert out.stdout.strip() == "[]"


def test_volumes_in_millilitres_follow_the_voxel_size() -> None:
    gt = np.zeros((10, 10, 10), np.uint8)
    gt[:5, :5, :5] = 1  # 125 voxels of 2 x 2 x 2 mm = 1000 mm^3 = 1 mL
    pred = gt.copy()
    pred[:5, :5, 5:7] = 1  # 50 voxels more: 1.4 mL
    report = evaluate_labels(pred, gt, (2.0, 2.0, 2.0))
    row = report.rows[0]
    assert (row.gt_ml, row.pred_ml) == (pytest.approx(1.0), pytest.approx(1.4))
    parsed = next(csv.DictReader(io.StringIO(report.to_csv())))
    assert float(parsed["gt_ml"]) == pytest.approx(1.0) and float(parsed["pred_ml"]) == pytest.approx(1.4)
    assert json.loads(report.to_json())["classes"][0]["gt_ml"] == pytest.approx(1.0)
    assert "gt mL" in report.format_table() and "1.40" in report.format_table()
    assert evaluate_labels(pred, gt, (2.0, 2.0, 4.0)).rows[0].gt_ml == pytest.approx(2.0)
