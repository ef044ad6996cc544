"""Few-shot quality: Sim-MPNet ``lite`` fine-tuned on a few painted slices, against three peers.

Peers, on the same painted slices, the same machine, in the same run:
  * ``plain``: the same ``lite`` network with every DMW-LA module switched off (no memory bank, no
    W-LD), trained with the same loss, budget and augmentation;
  * ``unet``: MONAI's 2D ``BasicUNet``, a network users know, trained by the engine's own loop with our
    recipe (benchmarks/_unet_peer.py): same slices, normalisation, input size, augmentation, CE + soft
    Dice, AdamW, poly schedule, budget, threads and batch size, predicted by the same ``Predictor``;
  * ``rf``: a random-forest pixel classifier on scikit-image multiscale features (the
    ilastik / napari-convpaint recipe).
Score: mean Dice over foreground classes on the slices that were never painted.

    python benchmarks/fewshot.py --budget 180 --counts 2 4 8 --datasets phantom:0,1 mni:0
    python benchmarks/fewshot.py --budget 180 --counts 2 4 8 --datasets devct:0,1,2 \
        --section "Few-shot segmentation: real multi-organ CT"
    python benchmarks/fewshot.py --budget 180 --counts 2 4 8 --datasets lung2:0 brain1:0 \
        --section "Few-shot segmentation: real lesions"
    python benchmarks/fewshot.py --budget 180 --counts 2 4 --datasets lung2:0 brain1:0 --background 4 \
        --section "Few-shot segmentation: real lesions, with background slices"
    python benchmarks/fewshot.py --budget 5 --counts 2 --datasets devct:0 --methods ours unet --no-write

A lesion slab thinner than the count asked for gives fewer painted slices; the table gives the count used.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from _report import write_section  # noqa: E402
from _unet_peer import UNET_FEATURES, finetune_unet  # noqa: E402

from napari_smp.config import InferConfig, ModelConfig, NormConfig, TrainConfig  # noqa: E402
from napari_smp.engine.demo import sparse_annotation  # noqa: E402
from napari_smp.engine.inference.predictor import Predictor  # noqa: E402
from napari_smp.engine.training.finetune import finetune  # noqa: E402
from napari_smp.metrics import dice  # noqa: E402

__all__ = [
    "METHODS",
    "NetRun",
    "Row",
    "background_slices",
    "NETWORKS",
    "console_line",
    "evaluate_count",
    "format_score",
    "load_dataset",
    "main",
    "mean_foreground_dice",
    "run_net",
    "run_rf",
    "table_lines",
    "write_table",
]

#: method key -> table heading; the networks are trained per seed, the random forest once
METHODS = {
    "ours": "ours (DMW-LA + W-LD)",
    "plain": "plain (no memory)",
    "unet": "MONAI U-Net",
    "rf": "random forest",
}
NETWORKS = ("ours", "plain", "unet")

# Real lesion volumes of the pyradiomics sdist (research/data.md, A): name -> (modality, normalisation).
PYRADIOMICS_CASES = {
    "lung2": ("chest CT, lung tumour", NormConfig(mode="ct")),
    "brain1": ("brain MRI, tumour", NormConfig(mode="percentile")),
}


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray, NormConfig, str]:
    """(image (Z, Y, X), labels, normalisation, description)."""
    if name == "phantom":
        from napari_smp.io import make_phantom

        ph = make_phantom(seed=0)
        return (
            ph.image,
            ph.labels,
            NormConfig(mode="ct"),
            f"procedural CT phantom {ph.image.shape}, {ph.labels.max()} organs",
        )
    if name == "mni":
        from fetch_data import fetch_mni_brain

        from napari_smp.io import read_labels, read_volume

        folder = fetch_mni_brain()
        image, _ = read_volume(folder / "mni_t1.nii.gz")
        labels, _ = read_labels(folder / "mni_tissue_labels.nii.gz")
        return (
            image,
            labels,
            NormConfig(mode="percentile"),
            f"MNI152 T1 brain {image.shape}, GM/WM labels (nilearn)",
        )
    if name == "devct":
        from fetch_data import DEV_CT_IMAGE, DEV_CT_LABELS, fetch_dev_ct

        from napari_smp.io import read_labels, read_volume

        folder = fetch_dev_ct()
        image, meta = read_volume(folder / DEV_CT_IMAGE)
        labels, label_meta = read_labels(folder / DEV_CT_LABELS)
        spacing = "x".join(f"{s:.2f}" for s in meta.spacing)
        organs = ", ".join((label_meta.class_names or {}).values())
        return (
            image,
            labels,
            NormConfig(mode="ct"),
            f"TotalSegmentator 2.18.0 example abdominal CT {image.shape} at {spacing} mm, {labels.max()} organs "
            f"({organs}); labels are TotalSegmentator model output (silver standard)",
        )
    if name in PYRADIOMICS_CASES:
        from fetch_data import fetch_pyradiomics

        from napari_smp.io import read_labels, read_volume

        folder = fetch_pyradiomics()
        image, meta = read_volume(folder / f"{name}_image.nrrd")
        labels, _ = read_labels(folder / f"{name}_label.nrrd")
        modality, norm = PYRADIOMICS_CASES[name]
        spacing = "x".join(f"{s:.2f}" for s in meta.spacing)
        return image, labels, norm, f"pyradiomics {name}: {modality} {image.shape} at {spacing} mm, lesion label"
    raise SystemExit(f"unknown dataset {name}")


def mean_foreground_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    labels = [int(v) for v in np.unique(gt) if v]
    values = [v for v in dice(pred, gt, labels=labels).values() if np.isfinite(v)]
    return float(np.mean(values))


def background_slices(labels: np.ndarray, count: int) -> list[int]:
    """``count`` label-free slices, evenly spread, that a user marks as background (``finetune --slices``)."""
    empty = np.flatnonzero(~labels.reshape(labels.shape[0], -1).any(axis=1))
    if count == 0 or empty.size == 0:
        return []
    picks = np.linspace(0, empty.size - 1, count + 2)[1:-1].round().astype(int)  # not the volume's ends
    return sorted(set(empty[picks].tolist()))


@dataclass
class NetRun:
    """One network trained and applied: its (Z, Y, X) prediction, optimiser steps and training seconds."""

    labels: np.ndarray
    steps: int
    seconds: float
    answer: str = ""  # lite: the answer kept after training (engine/training/answer.py), "" for the U-Net

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")


def run_net(
    method: str,
    image: np.ndarray,
    sparse: np.ndarray,
    norm: NormConfig,
    n_cls: int,
    budget: float,
    seed: int,
    threads: int,
    background: list[int],
    lite: dict[str, object] | None = None,
    shared: dict[str, object] | None = None,
) -> NetRun:
    """Train network ``method`` (ours, plain or unet) on the painted slices of ``sparse`` and segment ``image``.

    Args:
        image: (Z, Y, X) intensities.
        sparse: (Z, Y, X) labels on the painted slices, 0 elsewhere.
        background: label-free slices marked as background (trained on as well).
        lite: ModelConfig fields set for ours and plain (``--lite``), to measure one lever at a time.
        shared: ModelConfig / ``train.`` fields set for every network, the U-Net too (``--shared``):
            settings of the recipe rather than of our network, such as the input side or the batch.
    """
    shared = shared or {}
    model_fields = {k: v for k, v in shared.items() if not k.startswith("train.")}
    config = ModelConfig(preset="lite", num_classes=n_cls, norm=norm, use_memory=method == "ours", **model_fields)
    if lite and method != "unet":
        config = replace(config, **{k: v for k, v in lite.items() if not k.startswith(("train.", "unet."))})
    if method == "unet":  # the textbook U-Net sees one slice unless --unet-context gives it neighbours
        config = replace(config, in_channels=1, slice_context=int((lite or {}).get("unet.slice_context", 0)))
    train = TrainConfig(time_budget=budget, seed=seed, device="cpu", threads=threads)
    train = replace(train, **{k[len("train."):]: v for k, v in shared.items() if k.startswith("train.")})
    if lite and method != "unet":
        train = replace(train, **{k[len("train."):]: v for k, v in lite.items() if k.startswith("train.")})
    if method == "unet":  # the same config (normalisation, input side, classes) and train settings
        result = finetune_unet(image, sparse, config=config, train=train, slices=background)
    else:
        result = finetune(image, sparse, config=config, train=train, slices=background)
    infer = InferConfig(device="cpu", threads=threads)
    labels = Predictor(result.model, result.config, infer).predict(image).labels
    seconds = result.reports[-1].elapsed if result.reports else 0.0
    answer = result.config.lite_prediction if result.answers else ""
    return NetRun(labels, len(result.reports), seconds, answer)


def twins(labels: np.ndarray, painted: list[int]) -> list[int]:
    """Unpainted slices whose label map equals a painted slice's, voxel for voxel.

    The dev CT's labels were made on a coarser grid and resampled: 7 pairs of neighbouring slices share
    one label map. Such a slice would score a copy of its painted twin's answer, so it is not scored.
    """
    out = []
    for z in range(labels.shape[0]):
        if z not in painted and labels[z].any() and any(np.array_equal(labels[z], labels[p]) for p in painted):
            out.append(z)
    return out


def run_rf(image, sparse, norm, painted, seed, max_pixels: int = 60_000) -> np.ndarray:
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    from napari_smp.engine.volumes import normalize_volume

    vol = normalize_volume(image, norm)

    def feats(z: int) -> np.ndarray:
        f = multiscale_basic_features(vol[z], intensity=True, edges=True, texture=True, sigma_min=1, sigma_max=16)
        return f.reshape(-1, f.shape[-1])

    x = np.concatenate([feats(z) for z in painted])
    y = np.concatenate([sparse[z].ravel() for z in painted])
    rng = np.random.default_rng(seed)
    if len(y) > max_pixels:
        pick = rng.choice(len(y), max_pixels, replace=False)
        x, y = x[pick], y[pick]
    rf = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=seed, min_samples_leaf=2)
    rf.fit(x, y)
    return np.stack([rf.predict(feats(z)).reshape(vol.shape[1:]) for z in range(vol.shape[0])]).astype(np.uint8)


@dataclass
class Row:
    """Scores of every method for one dataset and painted-slice count.

    ``scores[m]`` / ``steps[m]`` / ``rates[m]`` hold one value per seed for a network, one for the RF.
    """

    dataset: str
    marked: str
    seeds: list[int]
    scores: dict[str, list[float]] = field(default_factory=dict)
    steps: dict[str, list[int]] = field(default_factory=dict)
    rates: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, list[str]] = field(default_factory=dict)
    rf_seconds: float | None = None


def evaluate_count(
    image: np.ndarray,
    labels: np.ndarray,
    norm: NormConfig,
    count: int,
    seeds: list[int],
    methods: list[str],
    budget: float,
    threads: int,
    n_background: int,
    dataset: str,
    lite: dict[str, object] | None = None,
    shared: dict[str, object] | None = None,
) -> Row:
    """Paint ``count`` slices of ``labels`` (Z, Y, X), run ``methods`` and score them on the unpainted slices."""
    n_cls = int(labels.max()) + 1
    sparse, painted = sparse_annotation(labels, count)
    background = background_slices(labels, n_background)
    unpainted = np.setdiff1d(np.arange(labels.shape[0]), painted + background + twins(labels, painted))
    marked = f"{len(painted)}" + (f" + {len(background)} background" if background else "")
    marked += f" ({len(unpainted)} scored)"
    row = Row(dataset, marked, list(seeds))
    if "rf" in methods:
        t = time.perf_counter()
        rf_pred = run_rf(image, sparse, norm, painted + background, 0)
        row.rf_seconds = time.perf_counter() - t
        row.scores["rf"] = [mean_foreground_dice(rf_pred[unpainted], labels[unpainted])]
    for seed in seeds:
        for method in (m for m in NETWORKS if m in methods):
            run = run_net(method, image, sparse, norm, n_cls, budget, seed, threads, background, lite, shared)
            row.scores.setdefault(method, []).append(mean_foreground_dice(run.labels[unpainted], labels[unpainted]))
            row.steps.setdefault(method, []).append(run.steps)
            row.answers.setdefault(method, []).append(run.answer)
            row.rates.setdefault(method, []).append(run.steps_per_second)
    return row


def format_score(values: list[float], signed: bool = False) -> str:
    """``0.812`` for one value, ``0.812 ± 0.031`` (mean ± sample standard deviation) for several.

    ``signed`` writes the sign of the mean (``+0.041``), for differences.
    """
    spec = "+.3f" if signed else ".3f"
    if len(values) < 2:
        return format(values[0], spec)
    return f"{format(float(np.mean(values)), spec)} ± {np.std(values, ddof=1):.3f}"


def _gap_nets(methods: list[str]) -> list[str]:
    """Our networks run beside the U-Net: each gets a "<net> - U-Net" column."""
    return [m for m in ("ours", "plain") if m in methods] if "unet" in methods else []


def _gaps(row: Row, net: str = "ours") -> list[float]:
    """``net`` - U-Net per seed: paired (same seed, same painted slices), so its spread is the gap's own."""
    return [o - u for o, u in zip(row.scores[net], row.scores["unet"], strict=True)]


def _speed(row: Row, methods: list[str]) -> str:
    """Mean optimiser steps per second of each network, in table order."""
    return " / ".join(f"{np.mean(row.rates[m]):.2f}" for m in NETWORKS if m in methods)


def _details(row: Row, methods: list[str]) -> str:
    """Per seed: every network's score and step count; then the RF's time."""
    nets = [m for m in NETWORKS if m in methods]
    parts = []
    for i, seed in enumerate(row.seeds):
        cells = ", ".join(f"{m} {row.scores[m][i]:.3f} ({row.steps[m][i]} steps{_answer(row, m, i)})" for m in nets)
        parts.append(f"seed {seed}: {cells}")
    if row.rf_seconds is not None:
        parts.append(f"RF {row.rf_seconds:.0f} s")
    return "; ".join(parts)


def _answer(row: Row, method: str, i: int) -> str:
    """``, sum of heads`` when a lite run kept the sum (engine/training/answer.py); the finest head goes unsaid."""
    return ", sum of heads" if row.answers.get(method, [])[i : i + 1] == ["sum"] else ""


def table_lines(rows: list[Row], methods: list[str]) -> list[str]:
    """The Markdown table: one column per method, ours - U-Net, steps per second, per-seed details."""
    nets = [m for m in NETWORKS if m in methods]
    head = ["dataset", "painted slices", *(METHODS[m] for m in METHODS if m in methods)]
    head += [f"{m} - U-Net" for m in _gap_nets(methods)]
    if nets:
        head += [f"steps/s ({' / '.join(nets)})", "per seed: score (steps)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.dataset, row.marked, *(format_score(row.scores[m]) for m in METHODS if m in methods)]
        cells += [format_score(_gaps(row, m), signed=True) for m in _gap_nets(methods)]
        if nets:
            cells += [_speed(row, methods), _details(row, methods)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def console_line(row: Row, methods: list[str]) -> str:
    """One progress line for the terminal."""
    scores = "  ".join(f"{m} {format_score(row.scores[m])}" for m in METHODS if m in methods)
    gap = "".join(f"  {m}-unet " + format_score(_gaps(row, m), signed=True) for m in _gap_nets(methods))
    speed = f"  steps/s {_speed(row, methods)}" if any(m in methods for m in NETWORKS) else ""
    return f"{row.dataset:8s} {row.marked} slices: {scores}{gap}{speed}  ({_details(row, methods)})"


def _unet_parameters(n_cls: int = 9) -> float:
    """Millions of trainable parameters of the U-Net peer (for the table's notes)."""
    from _unet_peer import SingleOutputUNet

    return sum(p.numel() for p in SingleOutputUNet(1, n_cls).parameters()) / 1e6


def _unet_input(context: int) -> str:
    return "one slice per input" if context == 0 else f"the slice and {context} neighbour(s) on each side"


def _lite_answer() -> str:
    if ModelConfig(preset="lite").lite_prediction == "finest":
        return (
            "their finest head, the four coarser heads being training-only auxiliaries "
            "(`ModelConfig.lite_prediction`, the lite default since 2026-12-03; earlier tables summed all five)"
        )
    return "the sum of their five heads"


def write_table(
    rows: list[Row],
    methods: list[str],
    budget: float,
    threads: int,
    section: str,
    datasets: dict[str, str],
    unet_context: int = 0,
) -> None:
    lines = [
        "Datasets: " + "; ".join(f"{name} = {desc}" for name, desc in datasets.items()) + ".",
        "",
        "Mean foreground Dice on the slices never annotated (neither painted, nor marked as background, "
        "nor an exact label twin of a painted slice); "
        f"{budget:.0f} s fine-tuning budget per network run, "
        f"lite preset, default fine-tune settings (poly learning-rate decay), {threads} torch thread(s) on an "
        "otherwise idle machine. ours = the lite network with its DMW-LA modules and W-LD memory bank "
        "(`finetune --memory`); plain = the same network without them (`ModelConfig.use_memory` False, the lite "
        "default since 2026-12-02; earlier tables ran the bank as the default). "
        f"Both answer with {_lite_answer()}, unless the sum of their heads scores higher on the painted slices "
        "after training (engine/training/answer.py; the per-seed details say so when it did). "
        f"MONAI U-Net = monai BasicUNet, 2D, features {UNET_FEATURES} ({_unet_parameters():.1f} M parameters), "
        f"fed {_unet_input(unet_context)} (ours and plain: the lite default, "
        f"{_unet_input(int(ModelConfig(preset='lite').slice_context or 0))}), "
        "trained by the engine's own loop on the same painted slices with the same normalisation, input size, "
        "augmentation, loss (CE + soft Dice, one output), AdamW learning rate, poly schedule, budget, threads and "
        "batch size, and applied by the same Predictor: only the network differs. "
        "RF = random forest on scikit-image multiscale features (100 trees, 2 jobs, trained once). "
        "Network scores are means over the seeds listed, ± the sample standard deviation over seeds when there "
        "are several (ours - U-Net: the per-seed gap, same seed and slices); with 2-8 painted slices one seed "
        "can move a score by 0.05-0.10. steps/s: optimiser steps per second of training, mean over seeds.",
        "",
        *table_lines(rows, methods),
    ]
    write_section(
        section,
        "\n".join(lines),
        packages=("torch", "monai", "numpy", "scikit-learn"),
        script="python " + shlex.join(["benchmarks/fewshot.py", *sys.argv[1:]]),
    )


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=180.0, help="seconds of fine-tuning per network run")
    ap.add_argument("--counts", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument(
        "--datasets",
        nargs="+",
        default=["phantom:0,1", "mni:0"],
        help="NAME[:SEEDS], e.g. phantom:0,1 or devct:0,1,2 (network runs per seed; the table gives their mean)",
    )
    ap.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=list(METHODS),
        help="methods to run (default all four): ours, plain, unet, rf",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the networks (the issue's 2 cores)")
    ap.add_argument(
        "--section",
        default="Few-shot segmentation",
        help="docs/benchmarks.md section to (re)write, so a run on other datasets keeps the earlier table",
    )
    ap.add_argument(
        "--background",
        type=int,
        default=0,
        help="also mark this many label-free slices as background, as a user would (finetune --slices)",
    )
    ap.add_argument(
        "--lite",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="set a ModelConfig field (or train.FIELD: a TrainConfig field) for ours and plain, e.g. "
        "lite_full_res=false or train.deep_supervision='\"heads\"' (repeatable): one lever at a time",
    )
    ap.add_argument(
        "--shared",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="set a ModelConfig field (or train.FIELD) for every network, the U-Net too, e.g. img_size=256 "
        "train.batch_size=2: a change of the recipe, not of our network (repeatable)",
    )
    ap.add_argument(
        "--unet-context",
        type=int,
        default=0,
        help="neighbouring slices per side fed to the U-Net peer as channels (default 0: the textbook 2D U-Net)",
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    args.lite = {k: json.loads(v) for k, _, v in (item.partition("=") for item in args.lite)}
    args.lite["unet.slice_context"] = args.unet_context
    args.shared = {k: json.loads(v) for k, _, v in (item.partition("=") for item in args.shared)}
    return args


def main() -> None:
    args = _parse_args()
    methods = [m for m in METHODS if m in args.methods]  # table order, whatever order they were given in
    rows: list[Row] = []
    descriptions: dict[str, str] = {}
    for spec in args.datasets:
        ds, _, seed_text = spec.partition(":")
        seeds = [int(s) for s in seed_text.split(",")] if seed_text else [0]
        image, labels, norm, desc = load_dataset(ds)
        for count in args.counts:
            row = evaluate_count(
                image, labels, norm, count, seeds, methods, args.budget, args.threads, args.background, ds,
                args.lite, args.shared,
            )
            rows.append(row)
            print(console_line(row, methods), flush=True)
        print(f"{ds}: {desc}")
        descriptions[ds] = desc
        if not args.no_write:  # after each dataset, so a long run leaves its results early
            write_table(rows, methods, args.budget, args.threads, args.section, descriptions, args.unet_context)


if __name__ == "__main__":
    main()
