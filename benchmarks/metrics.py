"""Benchmark: our HD95 against medpy's on a 512x512x100 CT-sized volume, values asserted identical.

Cases (spacing 2.5 x 0.8 x 0.8 mm in (Z, Y, X) order):
  * one organ: an ellipsoid of about 3% of the volume against a shifted, resized copy with a smooth
    bumpy boundary (a plausible prediction);
  * five organs in one label map, scored per class (medpy looped over the classes).

medpy computes whole-volume distance transforms; ours crops every class to its bounding box and uses
a KD-tree or an EDT on the crop (see docs/metrics.md). Each timing is the median of a few runs in this
one process. The table is written into docs/benchmarks.md, section "Metrics".

Run: ``python benchmarks/metrics.py [--repeats N] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _report import write_section
from scipy import ndimage

from napari_smp.metrics import class_metrics, hd95

__all__ = ["main"]

SPACING = (2.5, 0.8, 0.8)


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


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _medpy_per_class(pred: np.ndarray, gt: np.ndarray, labels: list[int]) -> dict[int, float]:
    from medpy.metric.binary import hd95 as medpy_hd95

    return {k: float(medpy_hd95(pred == k, gt == k, SPACING)) for k in labels}


def run(shape: tuple[int, int, int], repeats: int, medpy_repeats: int) -> str:
    """Time both cases and return the Markdown body (asserting identical values on the way)."""
    from medpy.metric.binary import hd95 as medpy_hd95

    rows = []
    pred, gt = single_organ(shape)
    frac = gt.mean()
    t_medpy, ref = _median_time(lambda: float(medpy_hd95(pred, gt, SPACING)), medpy_repeats)
    t_ours, ours = _median_time(lambda: hd95(pred, gt, SPACING).value(), repeats)
    assert abs(ours - ref) <= 1e-9 * max(ref, 1.0), (ours, ref)
    t_all, _ = _median_time(lambda: class_metrics(pred, gt, SPACING), repeats)
    rows.append((f"1 organ ({100 * frac:.1f}% of volume)", "hd95", t_medpy, t_ours, ref))
    print(f"single organ: medpy {t_medpy:.3f} s, ours {t_ours:.3f} s (x{t_medpy / t_ours:.1f}), {ref:.6f} mm")

    pred5, gt5 = five_organs(shape)
    labels = [1, 2, 3, 4, 5]
    t_medpy5, ref5 = _median_time(lambda: _medpy_per_class(pred5, gt5, labels), medpy_repeats)
    t_ours5, ours5 = _median_time(lambda: hd95(pred5, gt5, SPACING), repeats)
    for k in labels:
        assert abs(ours5[k] - ref5[k]) <= 1e-9 * max(ref5[k], 1.0), (k, ours5[k], ref5[k])
    mean5 = float(np.mean(list(ref5.values())))
    rows.append(("5 organs, one label map (medpy looped per class)", "hd95", t_medpy5, t_ours5, mean5))
    print(f"five organs: medpy {t_medpy5:.3f} s, ours {t_ours5:.3f} s, x{t_medpy5 / t_ours5:.1f}")

    lines = [
        f"Volume {shape[0]}x{shape[1]}x{shape[2]} (Z, Y, X), spacing {SPACING} mm. medpy 0.5.2 "
        f"`hd95` on the whole volume (median of {medpy_repeats}) against `napari_smp.metrics` "
        f"(median of {repeats}), same process, values asserted equal to 1e-9 (relative).",
        "",
        "| case | ours | medpy (s) | ours (s) | speed-up | HD95 (mm) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case, fn, tm, to, value in rows:
        lines.append(f"| {case} | `{fn}` | {tm:.3f} | {to:.3f} | {tm / to:.1f}x | {value:.4f} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += [
        "",
        f"All five metrics of the single organ at once (`class_metrics`: Dice, HD95, HD, ASSD, ASD from one "
        f"set of surface distances): {t_all:.3f} s. HD95 of the 5-organ case is the mean over the classes.",
        f"The machine is shared with other jobs (1-minute load average {load:.1f} at the end of the run), "
        "so absolute times move between runs; compare the ratios.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of our code per case (median)")
    parser.add_argument("--medpy-repeats", type=int, default=3, help="runs of medpy per case (median)")
    parser.add_argument("--quick", action="store_true", help="small volume, no docs update (smoke test)")
    args = parser.parse_args(argv)
    shape = (20, 128, 128) if args.quick else (100, 512, 512)
    body = run(shape, args.repeats, args.medpy_repeats)
    if args.quick:
        print(body)
        return 0
    path = write_section(
        "Metrics",
        body,
        packages=("numpy", "scipy", "medpy"),
        script="python benchmarks/metrics.py",
        extra={"threads": "1 (numpy/scipy/medpy are single-threaded here)"},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
