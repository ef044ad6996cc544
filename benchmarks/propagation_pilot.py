"""Pilot: painted axial slices -> whole volume without a network (copy, interpolation, optical flow).

For k = 2, 3, 6 painted slices spread evenly over the labelled z-range (each painted slice at the centre
of one of k equal bins), every method fills the volume and is scored by the mean foreground Dice
(``napari_smp.metrics.dice``, over the classes present) on the never-painted slices together, with its
wall time. Lesion volumes (pyradiomics lung2, brain1): the k painted slices lie on the lesion's
z-range, plus two all-background painted slices halfway between the lesion and each end of the volume.

Methods: ``nearest`` (copy of the nearest painted slice), ``interp`` (signed-distance interpolation),
``ilk``/``tvl1`` propagation with the defaults (256 grid, similarity blend), at full resolution (only
where a slice is larger than 256; ``--full-ks`` limits them to some k, they are slow), and with
``--ablation`` variants: distance-only blends, chained warps instead of composed flows, two flows per
pair instead of one inverted, the ILK window, a coarser grid.

    .venv/bin/python benchmarks/propagation_pilot.py --cases phantom dev_ct --ks 2 3 6
    .venv/bin/python benchmarks/propagation_pilot.py --cases lung2 --ks 3 --ablation --out table.md

Data come from ``scripts/fetch_data.py`` (cached under ``$NAPARI_SMP_DATA``); a case whose data is not
there is skipped with a note. The CPU is shared with other work here: the seconds are indicative.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "scripts"))
sys.path.insert(0, str(_ROOT / "benchmarks"))

from _report import cpu_model  # noqa: E402

from napari_smp.engine.inference.propagation import (  # noqa: E402
    FilledSlices,
    interpolate,
    nearest_copy,
    propagate,
)
from napari_smp.io import make_phantom, read_labels, read_volume  # noqa: E402
from napari_smp.metrics import dice  # noqa: E402

CASES = ("phantom", "dev_ct", "mni", "lung2", "brain1")
LESIONS = ("lung2", "brain1")

Method = Callable[[np.ndarray, np.ndarray, np.ndarray], FilledSlices]


def load(case: str) -> tuple[np.ndarray, np.ndarray]:
    """(image, labels), both (Z, Y, X), of one case; FileNotFoundError when its data is not cached."""
    import fetch_data  # scripts/fetch_data.py

    if case == "phantom":
        ph = make_phantom(seed=0)
        return ph.image, ph.labels
    if case == "dev_ct":
        folder = fetch_data.dev_ct_dir()
        image_path, label_path = folder / fetch_data.DEV_CT_IMAGE, folder / fetch_data.DEV_CT_LABELS
    elif case == "mni":
        folder = fetch_data.fetch_mni_brain()
        image_path, label_path = folder / "mni_t1.nii.gz", folder / "mni_tissue_labels.nii.gz"
    else:
        folder = fetch_data.pyradiomics_dir()
        image_path, label_path = folder / f"{case}_image.nrrd", folder / f"{case}_label.nrrd"
    if not (image_path.exists() and label_path.exists()):
        raise FileNotFoundError(f"{case}: {image_path.parent} is not fetched (run scripts/fetch_data.py)")
    image, _ = read_volume(image_path)
    labels, _ = read_labels(label_path)
    return image, labels



def loaded(cases: list[str]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(case, image, labels) of every case whose data is cached; a line for each one skipped."""
    for case in cases:
        try:
            image, labels = load(case)
        except FileNotFoundError as err:
            print(f"skipped: {err}", flush=True)
            continue
        yield case, image, labels

def choose_painted(labels: np.ndarray, k: int, lesion: bool, seed: int = 0) -> np.ndarray:
    """k slices over the labelled z-range, one per equal bin (+ 2 background slices for a lesion).

    Seed 0 takes each bin's centre; other seeds a uniformly random slice of each bin, so the spread over
    seeds is that of a user's choice of slices (``benchmarks/effort.py``).
    """
    z = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    lo, hi = int(z.min()), int(z.max())
    span = hi - lo + 1
    rng = np.random.default_rng(seed)
    picks = set()
    for i in range(k):
        a, b = lo + int(i * span / k), lo + int((i + 1) * span / k)  # bin [a, b)
        picks.add(lo + int((i + 0.5) * span / k) if seed == 0 else int(rng.integers(a, max(b, a + 1))))
    if lesion:
        depth = labels.shape[0]
        picks |= {lo // 2, (hi + depth) // 2}  # halfway to each end of the volume: background
    return np.array(sorted(p for p in picks if 0 <= p < labels.shape[0]))


def methods(shape: tuple[int, ...], ablation: bool, full: bool) -> dict[str, Method]:
    """The methods to run on a volume of ``shape``; ``full`` adds the full-resolution flows."""
    big = max(shape[1:]) > 256  # a full-resolution run differs from the 256 grid only on larger slices
    out: dict[str, Method] = {
        "nearest": lambda im, lab, p: nearest_copy(lab, p),
        "interp": lambda im, lab, p: interpolate(lab, p),
        "ilk": lambda im, lab, p: propagate(im, lab, p, flow="ilk"),
        "tvl1": lambda im, lab, p: propagate(im, lab, p, flow="tvl1"),
    }
    if big and full:
        # radius 7 at full resolution is the window of radius 4 on the 256 grid (and skimage's default)
        out["ilk full"] = lambda im, lab, p: propagate(im, lab, p, grid=None, flow_options={"radius": 7})
        out["tvl1 full"] = lambda im, lab, p: propagate(im, lab, p, flow="tvl1", grid=None)
    if ablation:
        out["ilk 1/d^2"] = lambda im, lab, p: propagate(im, lab, p, blend="distance")  # the research note's
        out["ilk 1/d"] = lambda im, lab, p: propagate(im, lab, p, blend="distance", power=1.0)
        out["ilk 1/d^4"] = lambda im, lab, p: propagate(im, lab, p, blend="distance", power=4.0)
        out["ilk chained"] = chained_warp  # 1/d^2 too: compare with "ilk 1/d^2"
        out["ilk 2 flows"] = lambda im, lab, p: propagate(im, lab, p, reuse_flow=False)
        out["ilk r7"] = lambda im, lab, p: propagate(im, lab, p, flow_options={"radius": 7})
        out["ilk grid 128"] = lambda im, lab, p: propagate(im, lab, p, grid=128)
    return out


def chained_warp(image: np.ndarray, labels: np.ndarray, painted: np.ndarray) -> FilledSlices:
    """Reference for the composition choice: the research note's recipe, each slice's probabilities
    warped into the next (bilinear, so they blur a little at every step) instead of composing flows."""
    from scipy import ndimage
    from skimage.registration import optical_flow_ilk
    from skimage.transform import resize

    from napari_smp.engine.volumes import guess_norm, normalize_volume

    base = nearest_copy(labels, painted)  # classes, painted one-hot, far
    vol = normalize_volume(image, guess_norm(image))
    z, h, w = vol.shape
    f = max(1.0, max(h, w) / 256)
    small = resize(vol, (z, round(h / f), round(w / f)), anti_aliasing=f > 1, preserve_range=True).astype(np.float32)
    grid = np.mgrid[0:h, 0:w].astype(np.float32)

    def step(prob: np.ndarray, target: int, source: int) -> np.ndarray:
        flow = optical_flow_ilk(small[target], small[source], radius=4, dtype=np.float32)
        if f > 1:
            scales = (h / flow.shape[1], w / flow.shape[2])
            flow = np.stack([resize(c, (h, w), order=1) * s for c, s in zip(flow, scales, strict=True)])
        coords = grid + flow
        return np.stack([ndimage.map_coordinates(c, coords, order=1, mode="nearest") for c in prob])

    out = base.probabilities.copy()
    pts = list(base.painted)
    acc = np.zeros_like(out)
    wsum = np.zeros(z, np.float32)
    for i, s in enumerate(pts):
        for direction, stop in ((1, pts[i + 1] if i + 1 < len(pts) else z), (-1, pts[i - 1] if i > 0 else -1)):
            prob = out[:, s]
            for t in range(s + direction, stop, direction):
                prob = step(prob, t, t - direction)
                wt = 1.0 / abs(t - s) ** 2
                acc[:, t] += wt * prob
                wsum[t] += wt
    fill = wsum > 0
    out[:, fill] = acc[:, fill] / wsum[fill][None, :, None, None]
    return FilledSlices(out, base.classes, base.painted, base.far, "chained")


def score(pred: np.ndarray, gt: np.ndarray, painted: np.ndarray) -> float:
    """Mean foreground Dice on the never-painted slices, over the classes present there in ``gt``."""
    return score_on(pred, gt, np.setdiff1d(np.arange(gt.shape[0]), painted))


def score_on(pred: np.ndarray, gt: np.ndarray, keep: np.ndarray) -> float:
    """Mean foreground Dice on slices ``keep``, over the classes present there in ``gt``."""
    g, p = gt[keep], pred[keep]
    classes = [int(c) for c in np.unique(g) if c]
    return float(dice(p, g, labels=classes).nanmean()) if classes else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--ks", nargs="+", type=int, default=[2, 3, 6])
    ap.add_argument("--methods", nargs="+", help="only these method names (default: all that apply)")
    ap.add_argument("--ablation", action="store_true", help="also the blend/reuse/grid/chaining variants")
    ap.add_argument("--full-ks", nargs="*", type=int, help="run the full-resolution flows at these k only")
    ap.add_argument("--out", type=Path, help="also write the table as Markdown to this new file")
    args = ap.parse_args(argv)

    rows: list[tuple[str, int, str, float, float]] = []
    print(f"CPU: {cpu_model()}", flush=True)
    for case, image, gt in loaded(args.cases):
        for k in args.ks:
            painted = choose_painted(gt, k, case in LESIONS)
            mask = np.zeros(gt.shape[0], bool)
            mask[painted] = True
            sparse = np.where(mask[:, None, None], gt, 0)
            full = args.full_ks is None or k in args.full_ks
            for name, fn in methods(gt.shape, args.ablation, full).items():
                if args.methods and name not in args.methods:
                    continue
                t0 = time.perf_counter()
                filled = fn(image, sparse, mask)
                secs = time.perf_counter() - t0
                d = score(filled.label_map(), gt, painted)
                rows.append((case, k, name, d, secs))
                print(f"{case:8s} k={k} {name:15s} dice {d:.3f}  {secs:7.1f} s  painted {painted.tolist()}", flush=True)
    table = format_table(rows)
    print(table)
    if args.out is not None:
        if args.out.exists():
            print(f"not written: {args.out} exists", file=sys.stderr)
            return 1
        args.out.write_text(f"CPU: {cpu_model()}\n\n{table}\n")
    return 0


def format_table(rows: list[tuple[str, int, str, float, float]]) -> str:
    """Markdown: one row per (case, k), one 'Dice / s' column per method."""
    names = list(dict.fromkeys(r[2] for r in rows))
    keys = list(dict.fromkeys((r[0], r[1]) for r in rows))
    cell = {(r[0], r[1], r[2]): f"{r[3]:.3f} / {r[4]:.1f}" for r in rows}
    lines = ["| case | k | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for case, k in keys:
        lines.append(f"| {case} | {k} | " + " | ".join(cell.get((case, k, n), "") for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
