"""Benchmark: our HD95 against medpy's on CT-sized volumes, clean and with scattered false positives.

Cases on a 100x512x512 volume (spacing 2.5 x 0.8 x 0.8 mm in (Z, Y, X) order), values asserted equal:
  * clean: one organ (an ellipsoid of about 3% of the volume against a shifted, resized copy with a
    smooth bumpy boundary), and five organs in one label map (medpy looped over the classes);
  * noisy, as real predictions are: the same predictions with 0.05% salt noise (random voxels set to a
    random class), with scattered islands (small blobs far from the organ), or with holes inside the
    organ plus salt.
Then ``napari-smp evaluate`` of a 10-class 512x512x300 pair, clean and with 0.05% salt noise, in a
fresh process (wall time and peak RSS); medpy there only on the largest class (a whole-volume EDT
pair per class takes about a minute).

medpy computes whole-volume distance transforms; ours finds the surface voxels of all classes in one
pass and the nearest surface voxels with a KD-tree (see docs/metrics.md). Each timing is the median of
a few runs in this one process. The tables are written into docs/benchmarks.md, section "Metrics".

Run: ``python benchmarks/metrics.py [--repeats N] [--medpy-repeats N] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _report import write_section
from scipy import ndimage

from napari_smp.metrics import class_metrics, evaluate_labels, hd95

__all__ = ["main"]

SPACING = (2.5, 0.8, 0.8)
SPACING_10 = (1.5, 0.8, 0.8)
SALT = 0.0005  # 0.05 % of the voxels


def _ellipsoid(shape: tuple[int, ...], centre: tuple[float, ...], radii: tuple[float, ...], bump: Any = 0.0):
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    level = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
    return (level + bump) <= 1.0


def _smooth_bumps(shape: tuple[int, ...], rng: np.random.Generator, amplitude: float) -> np.ndarray:
    coarse = rng.standard_normal(tuple(max(n // 16, 2) for n in shape))
    return ndimage.zoom(coarse, [n / c for n, c in zip(shape, coarse.shape, strict=True)], order=1) * amplitude


def single_organ(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, gt)`` boolean ``(Z, Y, X)``: a ~3% ellipsoid and a perturbed copy."""
    rng = np.random.default_rng(0)
    z, y, x = shape
    gt = _ellipsoid(shape, (z * 0.5, y * 0.49, x * 0.51), (z * 0.28, y * 0.185, x * 0.156))
    bumps = _smooth_bumps(shape, rng, 0.08)
    pred = _ellipsoid(shape, (z * 0.51, y * 0.483, x * 0.514), (z * 0.27, y * 0.19, x * 0.152), bumps)
    return pred, gt


def five_organs(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, gt)`` uint8 ``(Z, Y, X)`` label maps with five ellipsoid organs of different sizes."""
    rng = np.random.default_rng(1)
    z, y, x = shape
    organs = [  # centre and radii as fractions of the volume: liver, spleen, kidneys, pancreas-like
        ((0.50, 0.45, 0.30), (0.25, 0.16, 0.13)),
        ((0.45, 0.45, 0.75), (0.18, 0.09, 0.07)),
        ((0.55, 0.70, 0.35), (0.14, 0.06, 0.05)),
        ((0.55, 0.70, 0.65), (0.14, 0.06, 0.05)),
        ((0.40, 0.30, 0.55), (0.08, 0.04, 0.10)),
    ]
    gt = np.zeros(shape, dtype=np.uint8)
    pred = np.zeros(shape, dtype=np.uint8)
    bumps = _smooth_bumps(shape, rng, 0.1)
    for label, (c, r) in enumerate(organs, start=1):
        centre = (c[0] * z, c[1] * y, c[2] * x)
        radii = (r[0] * z, r[1] * y, r[2] * x)
        gt[_ellipsoid(shape, centre, radii)] = label
        moved = tuple(ci + rng.uniform(-2, 2) for ci in centre)
        pred[_ellipsoid(shape, moved, tuple(ri * rng.uniform(0.92, 1.06) for ri in radii), bumps)] = label
    return pred, gt


def _paint_ellipsoid(
    out: np.ndarray, label: int, centre: np.ndarray, radii: np.ndarray, rng: np.random.Generator, bump: float
) -> None:
    """Draw an ellipsoid into ``out`` working only inside its bounding box (no volume-sized floats)."""
    lo = np.maximum(np.floor(centre - 1.2 * radii), 0).astype(int)
    hi = np.minimum(np.ceil(centre + 1.2 * radii) + 1, out.shape).astype(int)
    grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    level = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
    if bump:
        level = level + _smooth_bumps(level.shape, rng, bump)
    out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))][level <= 1.0] = label


def ten_organs(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, gt)`` uint8 ``(Z, Y, X)`` maps with ten ellipsoid organs; pred moved, resized and bumpy."""
    rng = np.random.default_rng(3)
    gt = np.zeros(shape, dtype=np.uint8)
    pred = np.zeros(shape, dtype=np.uint8)
    size = np.asarray(shape, dtype=float)
    for label in range(1, 11):
        centre = rng.uniform(0.25, 0.75, 3) * size
        radii = rng.uniform(0.05, 0.16, 3) * size
        _paint_ellipsoid(gt, label, centre, radii, rng, 0.0)
        moved = centre + rng.uniform(-2, 2, 3)
        _paint_ellipsoid(pred, label, moved, radii * rng.uniform(0.93, 1.06, 3), rng, 0.1)
    return pred, gt


def salt(label_map: np.ndarray, fraction: float, labels: list[int], seed: int) -> np.ndarray:
    """``label_map`` with ``fraction`` of its voxels set to a random one of ``labels``."""
    rng = np.random.default_rng(seed)
    out = label_map.copy()
    n = round(fraction * out.size)
    where = rng.choice(out.size, n, replace=False)
    out.reshape(-1)[where] = rng.choice(np.asarray(labels, dtype=out.dtype), n)
    return out


def islands(mask: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``mask`` with ``count`` small blobs (3x3x3 crosses to 3x4x4 boxes) scattered over the volume."""
    rng = np.random.default_rng(seed)
    out = mask.copy()
    for _ in range(count):
        size = rng.integers(2, 5, size=3)
        corner = [int(rng.integers(0, n - s)) for n, s in zip(out.shape, size, strict=True)]
        out[tuple(slice(c, c + s) for c, s in zip(corner, size, strict=True))] = True
    return out


def holes(mask: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``mask`` with ``fraction`` of its voxels removed at random (false negatives inside the organ)."""
    rng = np.random.default_rng(seed)
    return mask & ~(rng.random(mask.shape) < fraction)


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _medpy_per_class(pred: np.ndarray, gt: np.ndarray, labels: list[int], spacing=SPACING) -> dict[int, float]:
    from medpy.metric.binary import hd95 as medpy_hd95

    return {k: float(medpy_hd95(pred == k, gt == k, spacing)) for k in labels}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(b), 1.0)


def _cpu_flags() -> str:
    try:
        flags = next(
            line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )  # fmt: skip
    except (OSError, StopIteration):
        return "unknown"
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ("avx512f", "avx512_bf16", "amx_tile"))


def _surface_rows(shape: tuple[int, int, int], repeats: int, medpy_repeats: int) -> list[tuple]:
    """``(case, medpy s, ours s, HD95)`` of every 100x512x512 case; values asserted equal on the way."""
    rows = []
    pred, gt = single_organ(shape)
    frac = 100 * gt.mean()
    organ_cases = [
        (f"clean: 1 organ ({frac:.1f}% of volume)", pred),
        ("noisy: 1 organ + 0.05% salt", salt(pred.view(np.uint8), SALT, [1], 10).view(bool)),
        ("noisy: 1 organ + 400 scattered islands", islands(pred, 400, 11)),
        ("noisy: 1 organ + 0.5% holes inside + 0.05% salt", salt(holes(pred, 0.005, 12).view(np.uint8), SALT, [1], 13)),
    ]  # fmt: skip
    from medpy.metric.binary import hd95 as medpy_hd95

    for case, p in organ_cases:
        p = p.view(bool) if p.dtype != bool else p
        t_medpy, ref = _median_time(lambda p=p: float(medpy_hd95(p, gt, SPACING)), medpy_repeats)
        t_ours, ours = _median_time(lambda p=p: hd95(p, gt, SPACING).value(), repeats)
        assert _close(ours, ref), (case, ours, ref)
        rows.append((case, t_medpy, t_ours, ref))
        print(f"{case}: medpy {t_medpy:.3f} s, ours {t_ours:.3f} s (x{t_medpy / t_ours:.1f}), {ref:.6f} mm")

    pred5, gt5 = five_organs(shape)
    labels = [1, 2, 3, 4, 5]
    for case, p in [
        ("clean: 5 organs, one label map", pred5),
        ("noisy: 5 organs + 0.05% salt (random classes)", salt(pred5, SALT, labels, 14)),
    ]:
        t_medpy, ref5 = _median_time(lambda p=p: _medpy_per_class(p, gt5, labels), medpy_repeats)
        t_ours, ours5 = _median_time(lambda p=p: hd95(p, gt5, SPACING), repeats)
        for k in labels:
            assert _close(ours5[k], ref5[k]), (case, k, ours5[k], ref5[k])
        rows.append((case, t_medpy, t_ours, float(np.mean(list(ref5.values())))))
        print(f"{case}: medpy {t_medpy:.3f} s, ours {t_ours:.3f} s, x{t_medpy / t_ours:.1f}")
    return rows


# The child reports its own peak RSS: getrusage's ru_maxrss would also count the pages of this (large)
# process that the child held between fork and exec.
_CLI = (
    "import sys\n"
    "from napari_smp.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
    "print('PEAK_KB', hwm[0].split()[1] if hwm else 'nan', file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def _cli_run(pred_path: Path, gt_path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of ``napari-smp evaluate PRED GT`` in a fresh process."""
    cmd = [sys.executable, "-c", _CLI, "evaluate", str(pred_path), str(gt_path)]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"napari-smp evaluate failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peak_kb = float(proc.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    return wall, peak_kb / 1024**2


def _evaluate_rows(shape: tuple[int, int, int], repeats: int) -> tuple[list[tuple], str]:
    """CLI and in-process timings of the 10-class pair, clean and noisy; medpy on the largest class."""
    from napari_smp.io import VolumeMeta, write_labels

    pred, gt = ten_organs(shape)
    noisy = salt(pred, SALT, list(range(1, 11)), 15)
    meta = VolumeMeta.from_grid(shape, SPACING_10)
    rows = []
    with tempfile.TemporaryDirectory(prefix="napari-smp-bench-") as tmp:
        gt_path = write_labels(Path(tmp) / "gt.nii.gz", gt, meta)
        for case, p in [("clean", pred), ("noisy: 0.05% salt (random classes)", noisy)]:
            pred_path = write_labels(Path(tmp) / "pred.nii.gz", p, meta)
            walls, rss = zip(*(_cli_run(pred_path, gt_path) for _ in range(max(1, repeats // 2))), strict=True)
            t_eval, _ = _median_time(lambda p=p: evaluate_labels(p, gt, SPACING_10), repeats)
            rows.append((case, statistics.median(walls), max(rss), t_eval))
            wall = statistics.median(walls)
            print(f"10 classes {case}: CLI {wall:.2f} s, {max(rss):.2f} GB; in-process {t_eval:.2f} s")
    # medpy on the largest class only (about a minute per class here)
    counts = np.bincount(gt.ravel(), minlength=11)
    k = int(np.argmax(counts[1:]) + 1)
    t_medpy, ref = _median_time(lambda: _medpy_per_class(noisy, gt, [k], SPACING_10)[k], 1)
    t_ours, ours = _median_time(lambda: hd95(noisy, gt, SPACING_10, labels=[k])[k], repeats)
    assert _close(ours, ref), (ours, ref)
    all_ours = class_metrics(noisy, gt, SPACING_10)
    assert _close(all_ours[k].hd95, ref)
    frac = 100 * counts[1:].sum() / gt.size
    note = (
        f"10 organs covering {frac:.1f}% of the volume (largest: class {k}, {100 * counts[k] / gt.size:.1f}%), "
        f"spacing {SPACING_10} mm, read from `.nii.gz` files. medpy on the noisy pair, class {k} only "
        f"(one run): {t_medpy:.1f} s against {t_ours:.2f} s for ours on that class "
        f"({t_medpy / t_ours:.0f}x), HD95 {ref:.4f} mm in both; medpy over all ten classes would take about "
        f"ten times as long."
    )
    return rows, note


def run(shape: tuple[int, int, int], shape10: tuple[int, int, int], repeats: int, medpy_repeats: int) -> str:
    """Time every case and return the Markdown body (asserting identical values on the way)."""
    rows = _surface_rows(shape, repeats, medpy_repeats)
    eval_rows, note = _evaluate_rows(shape10, repeats)
    lines = [
        f"Volume {shape[0]}x{shape[1]}x{shape[2]} (Z, Y, X), spacing {SPACING} mm. medpy 0.5.2 `hd95` on "
        f"the whole volume (median of {medpy_repeats}; per class for the label maps) against "
        f"`napari_smp.metrics.hd95` (median of {repeats}), same process, values asserted equal to 1e-9 "
        "(relative). Salt noise sets 0.05% of all voxels of the prediction to a random class.",
        "",
        "| case | medpy (s) | ours (s) | speed-up | HD95 (mm) |",
        "|---|---:|---:|---:|---:|",
    ]
    for case, tm, to, value in rows:
        lines.append(f"| {case} | {tm:.3f} | {to:.3f} | {tm / to:.1f}x | {value:.4f} |")
    lines += [
        "",
        "HD95 of the label maps is the mean over the classes.",
        "",
        f"`napari-smp evaluate` of a 10-class {shape10[0]}x{shape10[1]}x{shape10[2]} pair in a fresh process "
        f"(wall time including start-up and reading; median of {max(1, repeats // 2)}), and "
        f"`evaluate_labels` on the arrays in this process (median of {repeats}):",
        "",
        "| 10-class pair | `napari-smp evaluate` (s) | peak RSS (GB) | `evaluate_labels` (s) |",
        "|---|---:|---:|---:|",
    ]
    for case, wall, rss, t_eval in eval_rows:
        lines.append(f"| {case} | {wall:.2f} | {rss:.2f} | {t_eval:.2f} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += [
        "",
        note,
        f"The machine is shared with other jobs (1-minute load average {load:.1f} at the end of the run), "
        "so absolute times move between runs; compare the ratios.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of our code per case (median)")
    parser.add_argument("--medpy-repeats", type=int, default=3, help="runs of medpy per case (median)")
    parser.add_argument("--quick", action="store_true", help="small volumes, no docs update (smoke test)")
    args = parser.parse_args(argv)
    shape, shape10 = ((20, 128, 128), (30, 128, 128)) if args.quick else ((100, 512, 512), (300, 512, 512))
    body = run(shape, shape10, args.repeats, args.medpy_repeats)
    if args.quick:
        print(body)
        return 0
    path = write_section(
        "Metrics",
        body,
        packages=("numpy", "scipy", "medpy"),
        script="python benchmarks/metrics.py",
        extra={
            "CPU flags": _cpu_flags(),
            "threads": "medpy 1; ours 1, except KD-tree queries on all cores (`workers=-1`)",
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
