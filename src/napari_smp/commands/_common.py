"""What every subcommand shares: refusing a bad output early, run options, progress lines, clean-up."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..config import ModelConfig, TrainConfig

__all__ = [
    "LABEL_SUFFIXES",
    "CHECKPOINT_SUFFIXES",
    "SEGMENT_SUFFIXES",
    "check_output",
    "scribble_label",
    "architecture",
    "check_device",
    "train_config",
    "LogProgress",
    "progress",
    "clean",
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


def scribble_label(args: argparse.Namespace) -> int | None:
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


def architecture(args: argparse.Namespace, config: ModelConfig) -> ModelConfig:
    """``config`` as ``--cluster-bank`` lays it out (unchanged without it); one sentence with ``--no-memory``."""
    if not args.cluster_bank:
        return config
    if getattr(args, "use_memory", None) is False:
        raise ValueError("--cluster-bank builds a memory bank; it cannot go with --no-memory")
    return config.with_cluster_bank()


def check_device(args: argparse.Namespace) -> None:
    """With ``--require-device``, fail now rather than fall back to the CPU."""
    if args.require_device:
        from ..engine.device import resolve_device

        resolve_device(args.device, strict=True)


def train_config(args: argparse.Namespace, **extra: object) -> TrainConfig:
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


class LogProgress:
    """Progress for a log file or a pipe: a plain line every ``every`` seconds and one at the end.

    tqdm redraws its bar with carriage returns, which a file keeps as one line per update.
    """

    def __init__(self, total: int | None, desc: str, unit: str, every: float = 30.0) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n, self.postfix = 0, ""
        self._last = time.monotonic()

    def __enter__(self) -> LogProgress:
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


def progress(total: int | None, desc: str, unit: str) -> Any:
    """A tqdm bar on a terminal, a few plain lines in a log."""
    if not sys.stderr.isatty():
        return LogProgress(total, desc, unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


def clean(args: argparse.Namespace, labels: Any, spacing: Any, names: dict[int, str] | None) -> Any:
    """``--largest-component`` / ``--min-island-ml``: the cleaned label map (one line on stderr saying what went)."""
    if not args.largest_component and not args.min_island_ml:
        return labels
    from ..engine.cleanup import clean_labels, describe_cleanup

    done = clean_labels(labels, spacing, largest_component=args.largest_component, min_island_ml=args.min_island_ml)
    print(describe_cleanup(done, names), file=sys.stderr)
    return done.labels
