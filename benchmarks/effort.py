"""The effort benchmark: how much of a volume does a painting of k axial slices give back, by method.

The product's main job (``napari-smp complete``) against every way a user could fill the volume from
the same painting, in the same run, on the same slices:

* ``nearest``: a copy of the nearest painted slice (no learning: the bar every result must clear);
* ``interp``: each organ's signed distance interpolated between the painted slices around a slice;
* ``mci``: ITK's morphological contour interpolation (3D Slicer's "Fill between slices"; pip
  ``itk-morphologicalcontourinterpolation``, benchmark-only: skipped with a note when absent);
* ``propagation``: the optical-flow propagation alone (``engine.inference.propagate``, no network, no
  fusion): the first stage of ``complete``;
* ``evidence``: ``engine.complete`` without its network: propagation weighed by the intensity evidence
  (``engine.inference.intensity``), what ``complete`` returns when its network is left out;
* ``complete``: ``engine.complete`` at its defaults and the time budget (propagation + network + pooling);
* ``complete_clusters``: the same with ``--cluster-bank`` (a bank laid out for the Clusters views): its cost;
* ``scribbles``: ``complete`` with scribbles instead of whole slices: each region's skeleton on the same
  painted slices, background strokes with a label of their own (the share of marked pixels is recorded);
* ``scribbles_evidence``: the same strokes, ``complete`` without its network (grown slices, propagation +
  intensity): read against ``evidence``;
* ``unet``: MONAI's BasicUNet trained by the engine's own loop on the painted slices, same budget;
* ``rf``: a random forest on scikit-image multiscale features (ilastik / convpaint).

Cases: the phantom, the dev CT (TotalSegmentator), the MNI152 brain (grey/white matter, CSF) and the
pyradiomics lesions lung2 and brain1 (k slices on the lesion plus two all-background painted slices).
Painted slices: k bins over the labelled z-range, one slice per bin, at the bin's centre for seed 0 and
at a random place in the bin for other seeds (the seed also seeds the networks). Score: mean foreground
Dice on the never-painted slices (classes present there), leaving out the dev CT's "twins" (slices whose
label map equals a painted slice's voxel for voxel: its labels were resampled from a coarser grid).

Runs append one JSON line per (case, k, seed, method) to ``--results``, so slow methods can be added in
a later invocation; ``--report`` then writes the tables (mean +- std over seeds) to docs/benchmarks.md and
the curves to docs/images/effort.png.

    .venv/bin/python benchmarks/effort.py --methods nearest interp mci propagation rf
    .venv/bin/python benchmarks/effort.py --methods complete unet --ks 3 6 --budget 180
    .venv/bin/python benchmarks/effort.py --methods complete nearest propagation --busy --results busy.jsonl
    .venv/bin/python benchmarks/effort.py --report

``--rounds N`` adds correction rounds (issue 29; ``_effort_rounds.py``): from k painted slices, N rounds
each painting one more slice chosen by a policy (the product's suggestion, the worst slice, evenly
spaced), every method refilling after each round, ``complete`` going on from its last model and result
as the Refine button does. Rows go to ``benchmarks/results/effort_rounds.jsonl``.

    .venv/bin/python benchmarks/effort.py --rounds 4 --ks 2 --methods nearest interp mci evidence
    .venv/bin/python benchmarks/effort.py --rounds 4 --ks 2 --methods complete --cases phantom --seeds 0
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "benchmarks"))

from _report import cpu_model  # noqa: E402
from fewshot import run_rf, twins  # noqa: E402
from propagation_pilot import CASES, LESIONS, choose_painted, loaded  # noqa: E402
from propagation_pilot import score_on as score  # noqa: E402

METHODS = ("nearest", "interp", "mci", "propagation", "evidence", "complete", "complete_clusters", "scribbles",
           "scribbles_evidence", "unet", "rf")
DEFAULT_RESULTS = _ROOT / "benchmarks" / "results" / "effort.jsonl"
ROUNDS_RESULTS = _ROOT / "benchmarks" / "results" / "effort_rounds.jsonl"

Filler = Callable[[np.ndarray, np.ndarray, np.ndarray, int, float], tuple[np.ndarray, dict]]


def scored_slices(labels: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """The never-painted slices that are scored (the twins of painted slices left out)."""
    skip = set(painted.tolist()) | set(twins(labels, painted.tolist()))
    return np.array([z for z in range(labels.shape[0]) if z not in skip])


# --- the methods: (image, painting, painted, seed, budget) -> (label map, facts) -------------------------


def _nearest(image, painting, painted, seed, budget):
    from napari_smp.engine.inference.propagation import nearest_copy

    return nearest_copy(painting, painted).label_map(), {}


def _interp(image, painting, painted, seed, budget):
    from napari_smp.engine.inference.propagation import interpolate

    return interpolate(painting, painted).label_map(), {}


def _mci(image, painting, painted, seed, budget):
    """ITK morphological contour interpolation along z, every label at once (its default).

    MCI fills between painted slices only; beyond the painted range the nearest painted slice is copied,
    as ``interp`` does there, so that the two differ only where they interpolate.
    """
    import itk

    from napari_smp.engine.inference.propagation import nearest_copy

    sparse = np.ascontiguousarray(painting.astype(np.uint16))
    out = itk.morphological_contour_interpolator(itk.image_from_array(sparse), axis=2)  # numpy z = ITK axis 2
    filled = itk.array_from_image(out).astype(painting.dtype)
    outside = np.r_[0 : painted[0], painted[-1] + 1 : painting.shape[0]]
    filled[outside] = nearest_copy(painting, painted).label_map()[outside]
    return filled, {}


def _propagation(image, painting, painted, seed, budget):
    from napari_smp.engine.inference.propagation import propagate

    return propagate(image, painting, painted).label_map(), {}


def _evidence(image, painting, painted, seed, budget):
    from napari_smp.engine import complete

    done = complete(image, painting, network=False, slices=painted.tolist())
    return done.labels, {"evidence": str(done.evidence.choice) if done.evidence else ""}


def _complete(image, painting, painted, seed, budget, cluster_bank=False):
    from napari_smp.config import ModelConfig, TrainConfig
    from napari_smp.engine import complete
    from napari_smp.engine.volumes import guess_norm

    config = ModelConfig(norm=guess_norm(image))
    config = config.with_cluster_bank() if cluster_bank else config
    done = complete(image, painting, config=config, train=TrainConfig(time_budget=budget, seed=seed),
                    slices=painted.tolist())
    facts: dict = {"sources": done.sources, "notes": done.notes}
    if done.network is not None:
        facts["steps"] = len(done.network.reports)
        facts["painted_dice"] = max(done.network.answers.values(), default=float("nan"))
    if done.evidence is not None:
        facts["evidence"] = str(done.evidence.choice)
    return done.labels, facts


def _complete_clusters(image, painting, painted, seed, budget):
    """``complete --cluster-bank``: what the bank laid out for the Clusters views costs the main job."""
    return _complete(image, painting, painted, seed, budget, cluster_bank=True)


def skeleton_scribbles(painting: np.ndarray, painted: np.ndarray, background: int) -> np.ndarray:
    """Strokes a user could draw on the painted slices: each region's skeleton (its eroded core's, so that a
    stroke keeps off the boundary) with a 3-pixel brush; background marked with ``background``, 0 = unmarked."""
    from scipy import ndimage
    from skimage.morphology import disk, skeletonize

    out = np.zeros_like(painting)
    for z in painted:
        for value in np.unique(painting[z]):
            region = painting[z] == value
            core = ndimage.binary_erosion(region, disk(6 if value == 0 else 2))
            stroke = ndimage.binary_dilation(skeletonize(core if core.any() else region), disk(1)) & region
            out[z][stroke] = value if value else background
    return out


def _empty(painting: np.ndarray, painted: np.ndarray) -> list[int]:
    """The painted slices with nothing on them (a lesion case's two): a scribbling user lists them as
    background slices (the widget's box, complete's ``slices``), as a whole-slice painting does."""
    return [int(z) for z in painted if not painting[z].any()]


def _scribbles(image, painting, painted, seed, budget):
    """``complete --scribbles``: skeleton strokes on the same painted slices (issue 29's target: >= 90 % of
    the whole-slice Dice with <= 10 % of those slices' pixels marked)."""
    from napari_smp.config import TrainConfig
    from napari_smp.engine import complete

    background = int(painting.max()) + 1
    strokes = skeleton_scribbles(painting, painted, background)
    done = complete(image, strokes, train=TrainConfig(time_budget=budget, seed=seed), background_label=background,
                    slices=_empty(painting, painted))
    marked = float((strokes[painted] > 0).mean())
    return done.labels, {"sources": done.sources, "marked": round(marked, 4),
                         "steps": len(done.network.reports) if done.network else 0}


def _scribbles_evidence(image, painting, painted, seed, budget):
    """``complete --scribbles`` without its network: the same strokes grown into whole slices, then
    propagation + intensity (to be read against ``evidence`` on the whole slices: no network noise)."""
    from napari_smp.engine import complete

    background = int(painting.max()) + 1
    strokes = skeleton_scribbles(painting, painted, background)
    done = complete(image, strokes, network=False, background_label=background, slices=_empty(painting, painted))
    marked = float((strokes[painted] > 0).mean())
    return done.labels, {"sources": done.sources, "marked": round(marked, 4)}


def _unet(image, painting, painted, seed, budget):
    from _unet_peer import finetune_unet

    from napari_smp.config import InferConfig, ModelConfig, TrainConfig
    from napari_smp.engine.classes import ClassTable
    from napari_smp.engine.inference import Predictor
    from napari_smp.engine.volumes import guess_norm

    table = ClassTable.from_painting(painting[painted])
    config = table.configure(ModelConfig(preset="lite", norm=guess_norm(image), in_channels=1))
    train = TrainConfig(time_budget=budget, seed=seed)
    result = finetune_unet(image, table.to_index(painting), config=config, train=train, slices=painted.tolist())
    pred = Predictor(result.model, result.config, InferConfig()).predict(image).labels
    return table.to_values(pred), {"steps": len(result.reports)}


def _rf(image, painting, painted, seed, budget):
    from napari_smp.engine.volumes import guess_norm

    return run_rf(image, painting, guess_norm(image), painted.tolist(), seed).astype(painting.dtype), {}


FILLERS: dict[str, Filler] = {"nearest": _nearest, "interp": _interp, "mci": _mci, "propagation": _propagation,
                              "evidence": _evidence, "complete": _complete, "complete_clusters": _complete_clusters,
                              "scribbles": _scribbles,
                              "scribbles_evidence": _scribbles_evidence, "unet": _unet,
                              "rf": _rf}  # fmt: skip


def available(method: str) -> str:
    """'' when ``method`` can run here, else why not."""
    if method == "mci":
        try:
            import itk  # noqa: F401
        except ImportError:
            return "ITK is not installed (pip install itk-morphologicalcontourinterpolation)"
    return ""


def _burn() -> None:  # a busy neighbour: one core at 100 %
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def run(args: argparse.Namespace) -> None:
    args.results.parent.mkdir(parents=True, exist_ok=True)
    busy = None
    if args.busy:
        busy = mp.get_context("spawn").Process(target=_burn, daemon=True)
        busy.start()
    print(f"CPU: {cpu_model()}; budget {args.budget:g} s; busy: {bool(busy)}", flush=True)
    try:
        for case, image, labels in loaded(args.cases):
            for k in args.ks:
                for seed in args.seeds:
                    painted = choose_painted(labels, k, case in LESIONS, seed)
                    painting = np.zeros_like(labels)
                    painting[painted] = labels[painted]
                    keep = scored_slices(labels, painted)
                    for method in args.methods:
                        why = available(method)
                        if why:
                            print(f"{case} k={k} seed={seed} {method}: skipped, {why}", flush=True)
                            continue
                        load_before = os.getloadavg()[0]  # other work on the machine, for the record
                        t = time.perf_counter()
                        pred, facts = FILLERS[method](image, painting, painted, seed, args.budget)
                        seconds = time.perf_counter() - t
                        row = {"case": case, "k": k, "seed": seed, "method": method, "dice": score(pred, labels, keep),
                               "seconds": round(seconds, 2), "painted": painted.tolist(), "budget": args.budget,
                               "busy": bool(busy), "load": round(load_before, 2), "cpu": cpu_model(),
                               "date": time.strftime("%Y-%m-%d"), **facts}  # fmt: skip
                        with args.results.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
                        extra = f" ({facts['sources']}, {facts.get('steps', 0)} steps)" if "sources" in facts else ""
                        print(f"{case:8s} k={k} seed={seed} {method:12s} {row['dice']:.3f} {seconds:6.1f} s{extra}",
                              flush=True)  # fmt: skip
    finally:
        if busy is not None:
            busy.terminate()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 2, 3, 6])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--budget", type=float, default=180.0, help="seconds for each learned method (complete, unet)")
    ap.add_argument("--busy", action="store_true", help="keep one core busy with another process meanwhile")
    ap.add_argument("--results", type=Path, default=None, help="JSON lines, appended to (default: "
                    "benchmarks/results/effort.jsonl, or effort_rounds.jsonl with --rounds)")
    ap.add_argument("--rounds", type=int, default=0, help="correction rounds after the first painting (issue 29)")
    ap.add_argument("--policies", nargs="+", default=None, help="with --rounds: suggest, worst, evenly")
    ap.add_argument("--report", action="store_true", help="write tables and curves from --results, run nothing")
    args = ap.parse_args(argv)
    if args.results is None:
        args.results = ROUNDS_RESULTS if args.rounds else DEFAULT_RESULTS
    if args.report:
        from _effort_report import report
        from _effort_rounds import report_rounds

        report(DEFAULT_RESULTS if args.results == ROUNDS_RESULTS else args.results)
        if ROUNDS_RESULTS.exists():
            report_rounds(ROUNDS_RESULTS)
        return 0
    if args.rounds:
        from _effort_rounds import POLICIES, run_rounds

        args.policies = args.policies or list(POLICIES)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        run_rounds(args, FILLERS, loaded, choose_painted, LESIONS, score, scored_slices, cpu_model())
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
