"""What each ``napari-smp`` subcommand does, once ``cli.py`` has parsed its arguments.

Each ``run_*`` reads inputs, calls one engine entry point, and writes outputs atomically. Errors
are raised as ``ValueError`` subclasses with one sentence; ``cli.main`` prints them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import UNCAPPED_STEPS, InferConfig, ModelConfig, NormConfig, PretrainConfig, TrainConfig

__all__ = [
    "run_complete",
    "run_segment",
    "run_finetune",
    "run_evaluate",
    "run_train",
    "run_pretrain",
    "run_demo",
    "run_clusters",
    "check_output",
]


#: what each kind of output may be called: label maps in any format ``io.write_labels`` writes
LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
CHECKPOINT_SUFFIXES = (".safetensors",)
SEGMENT_SUFFIXES = (*LABEL_SUFFIXES, ".dcm")  # .dcm: a DICOM SEG, for a DICOM series only


def check_output(
    path: Path | None, overwrite: bool, *inputs: Path | None, suffixes: tuple[str, ...] = (), what: str = "--out"
) -> None:
    """Refuse an output before any work starts: an input, an existing file without ``--overwrite``, a
    folder that is missing or not writable, or an extension outside ``suffixes``."""
    if path is None:
        return
    path = Path(path)
    for inp in inputs:
        if inp is not None and Path(inp).resolve() == path.resolve():
            raise ValueError(f"{what} {path} is also an input; choose another name")
    if suffixes and not path.name.lower().endswith(suffixes):
        raise ValueError(f"{what} {path} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"the folder of {path} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"the folder of {path} is not writable")


def _scribble_label(args: argparse.Namespace) -> int | None:
    """The background label of a scribble painting (None: whole slices); one sentence for a bad pair."""
    if not args.scribbles:
        if args.background_label is not None:
            raise ValueError("--background-label goes with --scribbles (whole painted slices need no background label)")
        return None
    if args.background_label is None:
        raise ValueError("--scribbles needs --background-label B: paint some background with a label of its own "
                         "and give that value")
    if args.background_label <= 0:
        raise ValueError(f"--background-label must be a positive label value, not {args.background_label}: with "
                         "--scribbles 0 means not annotated, so paint background with a label of its own")
    return args.background_label


def _check_device(args: argparse.Namespace) -> None:
    """With ``--require-device``, fail now rather than fall back to the CPU."""
    if args.require_device:
        from .engine.device import resolve_device

        resolve_device(args.device, strict=True)


def _train_config(args: argparse.Namespace, **extra: object) -> TrainConfig:
    """The run options ``cli._add_run`` defines, as a ``TrainConfig``."""
    # no --steps: a time budget alone governs the run; without one, the command's default count
    steps = args.steps if args.steps is not None or args.time_budget else args.step_default
    return TrainConfig(
        steps=steps,
        time_budget=args.time_budget,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        rot_flip=args.rot_flip,
        soft_labels=args.soft_labels,
        seed=args.seed,
        device=args.device,
        **extra,
    )


class _LogProgress:
    """Progress for a log file or a pipe: a plain line every ``every`` seconds and one at the end.

    tqdm redraws its bar with carriage returns, which a file keeps as one line per update.
    """

    def __init__(self, total: int | None, desc: str, unit: str, every: float = 30.0) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n, self.postfix = 0, ""
        self._last = time.monotonic()

    def __enter__(self) -> _LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None and self.n:
            self._line()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.every:
            self._line()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def set_postfix(self, **values: object) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def _line(self) -> None:
        self._last = time.monotonic()
        of = f"/{self.total}" if self.total else ""
        tail = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {self.n}{of} {self.unit}s{tail}", file=sys.stderr, flush=True)


def _progress(total: int | None, desc: str, unit: str) -> Any:
    """A tqdm bar on a terminal, a few plain lines in a log."""
    if not sys.stderr.isatty():
        return _LogProgress(total, desc, unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


def _clean(args: argparse.Namespace, labels: Any, spacing: Any, names: dict[int, str] | None) -> Any:
    """``--largest-component`` / ``--min-island-ml``: the cleaned label map (one line on stderr saying what went)."""
    if not args.largest_component and not args.min_island_ml:
        return labels
    from .engine.cleanup import clean_labels, describe_cleanup

    done = clean_labels(labels, spacing, largest_component=args.largest_component, min_island_ml=args.min_island_ml)
    print(describe_cleanup(done, names), file=sys.stderr)
    return done.labels


def run_segment(args: argparse.Namespace) -> int:
    from .engine.inference import Predictor
    from .io import check_dicom_seg_output, read_volume, write_labels

    check_output(args.out, args.overwrite, args.image, args.checkpoint, suffixes=SEGMENT_SUFFIXES)
    volume, meta = read_volume(args.image)
    check_dicom_seg_output(args.out, meta)
    predictor = Predictor.from_checkpoint(
        args.checkpoint, InferConfig(device=args.device, batch_size=args.batch_size), args.require_device
    )
    with _progress(volume.shape[0], "segmenting", "slice") as bar:
        result = predictor.predict(volume, meta.spacing, progress=lambda done, _: bar.update(done - bar.n))
    named = {v: n for v, n in predictor.classes.by_value.items() if v}
    labels = _clean(args, result.labels, meta.spacing, named)
    write_labels(args.out, labels, meta, class_names=named)  # NRRD and DICOM SEG keep the names
    counts = {n: int((labels == v).sum()) for v, n in named.items()}
    print(f"wrote {args.out} ({volume.shape[0]} slices on {predictor.device}); voxels per class: {counts}")
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    from .engine.training import finetune
    from .engine.volumes import guess_norm
    from .io import read_labels, read_volume

    check_output(args.out, args.overwrite, args.image, args.labels, args.init, suffixes=CHECKPOINT_SUFFIXES)
    background = _scribble_label(args)
    new_model_only = (args.img_size, args.use_memory, args.slice_context)
    if args.init is not None and any(v is not None for v in new_model_only):
        raise ValueError(
            "--img-size, --slice-context and --memory/--no-memory set up a new model; "
            "a run from --init keeps the architecture it was built with"
        )
    image, meta = read_volume(args.image)
    labels, lmeta = read_labels(args.labels)
    if labels.shape != image.shape:
        raise ValueError(f"labels {args.labels} have shape {labels.shape} but image {args.image} has {image.shape}")
    if not meta.same_grid(lmeta, atol=1e-2):
        raise ValueError(f"labels {args.labels} and image {args.image} are on different voxel grids")
    if background is not None:
        from .engine.annotation import check_scribbles

        check_scribbles(labels, background)
    norm = NormConfig(mode=args.norm) if args.norm else guess_norm(image)
    config = ModelConfig(
        preset=args.preset,
        norm=norm,
        img_size=args.img_size,
        slice_context=args.slice_context,
        use_memory=args.use_memory,
    )
    train = _train_config(args)
    _check_device(args)
    with _progress(None if train.step_cap == UNCAPPED_STEPS else train.step_cap, "fine-tuning", "step") as bar:

        def report(r) -> None:
            bar.update(1)
            bar.set_postfix_str(r.summary())

        result = finetune(
            image,
            labels,
            out=args.out,
            config=config,
            init=args.init,
            train=train,
            slices=args.slices,
            class_names=lmeta.class_names,
            callback=report,
            background_label=background,
        )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    answer = f"; {result.answer()}" if result.answer() else ""
    print(
        f"wrote {args.out}: {result.summary()}{answer}"
        if result.reports
        else f"wrote {args.out} without training (stopped: {result.stopped})"
    )
    return 0


def run_complete(args: argparse.Namespace) -> int:
    from .engine.classes import ClassTable
    from .engine.completion import complete
    from .engine.volumes import guess_norm
    from .io import check_dicom_seg_output, read_labels, read_volume, write_labels

    inputs = (args.image, args.painted, args.init)
    check_output(args.out, args.overwrite, *inputs, suffixes=SEGMENT_SUFFIXES)
    check_output(args.model_out, args.overwrite, *inputs, args.out, suffixes=CHECKPOINT_SUFFIXES, what="--model-out")
    background = _scribble_label(args)
    image, meta = read_volume(args.image)
    check_dicom_seg_output(args.out, meta)
    painted, pmeta = read_labels(args.painted)
    if painted.shape != image.shape or not meta.same_grid(pmeta, atol=1e-2):
        raise ValueError(f"the painting {args.painted} is not on the grid of {args.image}")
    if background is not None:  # bad scribbles: one sentence before any work
        from .engine.annotation import check_scribbles

        check_scribbles(painted, background)
    _check_device(args)
    train = TrainConfig(time_budget=args.time_budget, seed=args.seed, device=args.device)
    config = ModelConfig(norm=guess_norm(image))
    with _progress(None, "completing", "step") as bar:

        def report(r) -> None:
            bar.update(1)
            bar.set_postfix_str(r.summary())

        done = complete(
            image,
            painted,
            config=config,
            init=args.init,
            train=train,
            class_names=pmeta.class_names,
            slices=args.slices,
            model_out=args.model_out,
            network=args.network,
            callback=report,
            background_label=background,
        )
    # scribbles: the background label is written as 0, so its name goes
    classes = {v: n for v, n in (pmeta.class_names or {}).items() if v != background}
    if done.network is not None:  # the model's table names every class it knows
        classes = {v: n for v, n in ClassTable.from_config(done.network.config).by_value.items() if v} | classes
    write_labels(args.out, _clean(args, done.labels, meta.spacing, classes), meta, class_names=classes or None)
    for note in done.notes:
        print(f"note: {note}", file=sys.stderr)
    saved = f"; model {args.model_out}" if args.model_out is not None and done.network is not None else ""
    print(f"wrote {args.out}: {done.summary()}{saved}")
    if done.suggestion is not None:
        z = done.suggestion.slice
        at = float(meta.affine[2, 0] * z + meta.affine[2, 3])  # superior position of the slice (RAS+ world)
        print(f"next: {done.suggestion.describe(classes)}; array slice {z}, S = {at:.1f} mm")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from .io import read_labels
    from .io.atomic import atomic_write_text
    from .metrics import evaluate_labels

    for out, suffix in ((args.json, ".json"), (args.csv, ".csv")):
        check_output(out, args.overwrite, args.pred, args.gt, suffixes=(suffix,), what=f"--{suffix[1:]}")
    if args.json is not None and args.csv is not None and args.json.resolve() == args.csv.resolve():
        raise ValueError("--json and --csv name the same file")
    pred, pmeta = read_labels(args.pred)
    gt, gmeta = read_labels(args.gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"PRED {args.pred} has shape {pred.shape} but GT {args.gt} has shape {gt.shape} "
            "(after reorientation to RAS); they must share one grid"
        )
    if not pmeta.same_grid(gmeta, atol=1e-2):
        raise ValueError(
            f"PRED {args.pred} and GT {args.gt} are on different voxel grids "
            f"(spacing {pmeta.spacing} vs {gmeta.spacing}, origin {pmeta.origin} vs {gmeta.origin})"
        )
    names = gmeta.class_names or pmeta.class_names
    report = evaluate_labels(pred, gt, gmeta.spacing, convention=args.convention, class_names=names)
    print(report.format_table())
    if args.json:
        atomic_write_text(args.json, report.to_json())
    if args.csv:
        atomic_write_text(args.csv, report.to_csv())
    return 0


def run_train(args: argparse.Namespace) -> int:
    from .engine.training import train_dataset

    if int(os.environ.get("RANK", "0")) == 0:
        check_output(args.out, args.overwrite, suffixes=CHECKPOINT_SUFFIXES)
    _check_device(args)
    config = ModelConfig(
        preset=args.preset,
        norm=NormConfig(mode=args.norm),
        img_size=args.img_size,
        slice_context=args.slice_context,
        use_memory=args.use_memory,
    )
    train = _train_config(args, val_fraction=args.val_fraction, val_every=args.val_every)
    summary = train_dataset(args.dataset, args.out, config, train)
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"trained {summary.steps} steps (stopped: {summary.stopped}) on {len(summary.train_cases)} cases; "
            f"best validation Dice {summary.best_dice:.4f} at step {summary.best_step} "
            f"({len(summary.val_cases)} held-out cases); wrote {args.out}"
        )
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    from .engine.pretraining import check_settings, pretrain, save_pretrained_result
    from .engine.volumes import guess_norm
    from .io import read_volume

    check_output(args.out, args.overwrite, *args.volumes, suffixes=CHECKPOINT_SUFFIXES)
    config = ModelConfig(preset="lite", img_size=args.img_size, lite_width=args.width)
    settings = PretrainConfig(
        method=args.method,
        steps=args.steps,
        time_budget=args.time_budget,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        position_threshold=None if args.same_slice_only else 0.1,
    )
    check_settings(config, settings)
    volumes = [read_volume(path)[0] for path in args.volumes]
    norm = NormConfig(mode=args.norm) if args.norm else guess_norm(volumes[0])
    config = replace(config, norm=norm)
    _check_device(args)
    with _progress(args.steps, f"pre-training ({args.method})", "step") as bar:

        def report(r) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{r.loss:.3f}")

        result = pretrain(volumes, config, settings, callback=report)
    if not result.reports:
        raise ValueError("pre-training was cancelled before its first step; nothing was written")
    save_pretrained_result(args.out, result)
    first, last = result.reports[0], result.reports[-1]
    print(
        f"wrote {args.out}: {args.method} on {result.slices} slices of {result.volumes} volume(s), "
        f"{len(result.reports)} steps (stopped: {result.stopped}); "
        f"loss {first.loss:.3f} -> {last.loss:.3f}"
    )
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from .engine.demo import run_demo as demo

    steps = {} if args.steps is None else {"steps": args.steps}  # run_demo holds the default
    result = demo(args.out, **steps, time_budget=args.time_budget, device=args.device)
    if args.gui:
        # the viewer is napari's: reached through the plugin's manifest, like every widget
        from npe2 import PluginManager

        manager = PluginManager.instance()
        manager.discover()
        manager.commands.execute("napari-smp.open_demo", kwargs={"out": str(result.out)})
    return 0


def run_clusters(args: argparse.Namespace) -> int:
    """``napari-smp clusters``: the bank's clusters of one module as a figure, a table and K's curve."""
    from .engine.checkpoint import read_checkpoint_info
    from .engine.inference import Predictor
    from .engine.inference.cluster_figure import (
        parse_slices,
        save_cluster_figure,
        save_k_curve,
        write_cluster_csv,
    )
    from .engine.inference.cluster_report import cluster_report, default_module
    from .engine.k_history import read_k_history
    from .io import read_labels, read_volume

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if not out.parent.is_dir():
        raise ValueError(f"the folder of {out} does not exist")
    names = ["clusters.png", "clusters.svg", "clusters.csv", "k_history.png", "k_history.svg"]
    taken = [n for n in names if (out / n).exists()]
    if taken and not args.overwrite:
        raise ValueError(f"{out / taken[0]} exists; pass --overwrite to replace it")
    volume, meta = read_volume(args.image)
    slices = parse_slices(args.slices, volume.shape[0])
    labels = None
    if args.labels is not None:
        labels, _ = read_labels(args.labels)
        if labels.shape != volume.shape:
            raise ValueError(f"--labels {args.labels} has shape {labels.shape}, the image {volume.shape}")
    info = read_checkpoint_info(args.checkpoint)
    predictor = Predictor.from_checkpoint(args.checkpoint, InferConfig(device=args.device))
    module = args.module or default_module(predictor.memory_modules())
    painted = info["extra"].get("slices")
    with _progress(len(slices), f"clusters of {module}", "slice") as bar:
        report = cluster_report(
            predictor, volume, module, slices, None if labels is None else labels[slices.start : slices.stop],
            painted=painted, progress=lambda done, _: bar.update(done - bar.n), space=args.space,
        )
    out.mkdir(exist_ok=True)
    written = save_cluster_figure(report, volume, out / "clusters")
    written.append(write_cluster_csv(report, out / "clusters.csv"))
    history = read_k_history(info["extra"])
    memory = predictor.config.memory
    if history is not None:
        written += save_k_curve(history, memory.slots, out / "k_history", memory.warmup_steps)
    if report.warming_up:
        print("note: this bank never finished its warm-up; its clusters mean nothing yet", file=sys.stderr)
    if history is None:
        print("note: this checkpoint keeps no K history (written before it was recorded): no K curve",
              file=sys.stderr)
    print(f"{report.k} clusters of {module} on slices {slices.start}..{slices.stop - 1}: "
          f"{', '.join(str(p) for p in written)}")
    for split in report.purity:
        print(f"mean purity, {split} slices (body only): {report.mean_purity(split):.3f}")
    return 0
