"""Correcting an existing segmentation (``complete --start``, the Correct widget): how much do a few
repainted slices give back over the segmentation as it was?

The existing segmentation stands for another tool's result: the completion of two painted slices by
propagation + intensity (a good tool) or by a copy of the nearest painted slice (a poor one). A
simulated user repaints the ground truth of one slice (the worst one of the segmentation, or the slice
a third of the way into the labelled range) or of two (a third and two thirds of the way). Scored:
mean foreground Dice on every slice but the repainted ones, for

* ``as it was``: the segmentation unchanged (what repainting the slices alone gives the other slices);
* ``fixed reach``: the correction propagated two slices each way, the segmentation beyond (a knob);
* ``carried``: ``correct_segmentation`` (anchors where the segmentation agrees best with the carried
  correction; engine/inference/correct_existing.py);
* ``corrections alone``: propagation + intensity from the repainted slices only (the segmentation ignored).

    .venv/bin/python benchmarks/correct_existing.py --cases phantom dev_ct lung2 brain1
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cpu_model, write_section  # noqa: E402
from propagation_pilot import CASES, LESIONS, choose_painted, loaded  # noqa: E402
from propagation_pilot import score_on as score  # noqa: E402

SECTION = "Correcting an existing segmentation"
METHODS = ("as it was", "fixed reach", "carried", "corrections alone")


def _fixed_reach(image: np.ndarray, seg: np.ndarray, fix: np.ndarray, slices: list[int], reach: int = 2) -> np.ndarray:
    """The corrections propagated ``reach`` slices each way towards the segmentation's slices there."""
    from napari_smp.engine.inference.propagation import propagate

    depth = seg.shape[0]
    anchors = {a for z in slices for a in (z - reach, z + reach)
               if 0 <= a < depth and all(abs(a - q) >= reach for q in slices)}  # fmt: skip
    painting = np.zeros_like(seg)
    for a in anchors:
        painting[a] = seg[a]
    painting[slices] = fix[slices]
    filled = propagate(image, painting, np.array(sorted(anchors | set(slices)))).label_map()
    out = seg.copy()
    for z in slices:
        out[max(0, z - reach + 1) : min(depth, z + reach)] = filled[max(0, z - reach + 1) : min(depth, z + reach)]
    out[slices] = fix[slices]
    return out


def run_case(case: str, image: np.ndarray, labels: np.ndarray) -> list[dict]:
    from napari_smp.engine import complete
    from napari_smp.engine.inference.correct_existing import correct_segmentation
    from napari_smp.engine.inference.propagation import nearest_copy

    painted = choose_painted(labels, 2, case in LESIONS, 0)
    painting = np.zeros_like(labels)
    painting[painted] = labels[painted]
    starts = {"propagation + intensity": complete(image, painting, network=False, slices=painted.tolist()).labels,
              "nearest copy": nearest_copy(painting, painted).label_map()}  # fmt: skip
    z = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    span = list(range(int(z.min()), int(z.max()) + 1))
    rows = []
    for start_name, seg in starts.items():
        per_slice = [score(seg, labels, np.array([s])) for s in span]
        worst = span[int(np.argmin([d if d == d else 1.0 for d in per_slice]))]
        third, two_thirds = span[len(span) // 3], span[2 * len(span) // 3]
        for what, slices in (("worst slice", [worst]), ("a third in", [third]), ("two slices", [third, two_thirds])):
            fix = np.zeros_like(labels)
            fix[slices] = labels[slices]
            keep = np.array([s for s in range(labels.shape[0]) if s not in slices])
            t = time.perf_counter()
            carried = correct_segmentation(image, seg, fix)
            seconds = time.perf_counter() - t
            alone = complete(image, fix, network=False, slices=slices).labels
            dice = {"as it was": score(seg, labels, keep), "fixed reach": score(_fixed_reach(image, seg, fix, slices),
                    labels, keep), "carried": score(carried.labels, labels, keep),
                    "corrections alone": score(alone, labels, keep)}  # fmt: skip
            rows.append({"case": case, "start": start_name, "what": what, "slices": slices, "dice": dice,
                         "seconds": seconds, "anchors": carried.anchors.tolist()})  # fmt: skip
            print(f"{case:8s} {start_name:24s} {what:12s} " + " ".join(f"{m} {v:.3f}" for m, v in dice.items())
                  + f"  carried in {seconds:.1f} s", flush=True)  # fmt: skip
    return rows


def report(rows: list[dict]) -> None:
    lines = ["| volume | segmentation | repainted | " + " | ".join(METHODS) + " | seconds (carried) |",
             "|---" * (len(METHODS) + 4) + "|"]  # fmt: skip
    for r in rows:
        top = max(r["dice"].values())
        cells = [f"**{r['dice'][m]:.3f}**" if r["dice"][m] == top else f"{r['dice'][m]:.3f}" for m in METHODS]
        lines.append(f"| {r['case']} | {r['start']} | {r['what']} {r['slices']} | " + " | ".join(cells)
                     + f" | {r['seconds']:.1f} |")  # fmt: skip
    gain = {m: np.mean([r["dice"][m] - r["dice"]["as it was"] for r in rows]) for m in METHODS}
    worst = {m: np.min([r["dice"][m] - r["dice"]["as it was"] for r in rows]) for m in METHODS}
    lines.append("| **mean change** | | | " + " | ".join(f"{gain[m]:+.3f} (worst {worst[m]:+.3f})" for m in METHODS)
                 + " | |")  # fmt: skip
    body = (f"CPU: {cpu_model()}; {date.today()}; seed 0 (the painted slices: each bin's centre). Mean foreground "
            "Dice on every slice but the repainted ones; bold: the best of the row. The existing segmentation "
            "is the completion of 2 painted slices by propagation + intensity, or a copy of the nearest painted "
            "slice; the user repaints the ground truth of the slices named.\n\n" + "\n".join(lines) + "\n")
    write_section(SECTION, body, packages=("numpy", "scipy", "scikit-image"),
                  script="python benchmarks/correct_existing.py --cases phantom dev_ct lung2 brain1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", choices=CASES, default=["phantom", "dev_ct", "lung2", "brain1"])
    args = ap.parse_args()
    rows = [row for case, image, labels in loaded(args.cases) for row in run_case(case, image, labels)]
    if rows:
        report(rows)


if __name__ == "__main__":
    main()
