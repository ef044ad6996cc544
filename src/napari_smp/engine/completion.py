"""The main job in one call: a painting (a few painted axial slices) -> a label map of the whole volume.

Two sources fill the slices nobody painted, and are pooled:

1. **Propagation** (``inference.propagation``): the painting carried along the image from slice to
   slice by optical flow, from both sides, then weighed by what each voxel's intensity says of its class
   (``inference.intensity``: the painted slices' intensity histograms as evidence, the propagated map
   mixed with the painting's interpolated shape as the prior, the shape's share and the evidence's
   strength chosen by hiding each painted slice in turn). No learning,
   seconds; strong near painted slices, where the image changes little. It is the first result
   (``on_first``) and the fallback.
2. **The network**: Sim-MPNet fine-tuned on the painted slices for what is left of the time budget,
   then applied to every slice. It does not drift with distance, and sees organs that begin or end
   between painted slices.

They are pooled per voxel as a weighted geometric mean of their class probabilities (log-linear
pooling: where both agree nothing changes, where they disagree the surer one wins, weighted by
``network_weight``). With a single painted slice holding structures the network is not pooled: shown
one slice it learns that slice's shapes, and pooled it pulled the result below propagation on most
volumes measured (:data:`ONE_SLICE_WEIGHT`); it is still trained when a model is asked for, so a
correction can go on from it. A run whose network learnt too little (few steps on a slow or busy CPU,
a poor fit of its own painted slices) returns propagation alone and says so. Painted slices stay as
painted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..config import ModelConfig, TrainConfig
from .classes import ClassTable
from .errors import Cancelled, EngineError
from .fine_tuned_prediction import predict_fine_tuned
from .inference.intensity import Calibration, calibrate, intensity_bins, refine
from .inference.interpolation import FilledSlices
from .inference.propagation import propagate
from .inference.suggest import Suggestion, suggest_slice
from .volumes import annotated_slices, check_image, check_labels

if TYPE_CHECKING:  # training loads torch; propagation alone must not
    from .training import StepReport, TrainResult

__all__ = ["Completion", "complete", "pool", "network_share", "MIN_NETWORK_STEPS", "MIN_PAINTED_DICE",
           "NETWORK_WEIGHT", "ONE_SLICE_WEIGHT"]

#: a network with fewer steps, or a worse fit of its own painted slices, is not pooled: one that cannot
#: reproduce the slices it was shown is no guide elsewhere. In the idle pilot (phantom and dev CT, k = 3
#: and 6; docs/experiments/2026-12-07-complete-pilot-busy-cpu.md) the networks that fit their painting at
#: 0.40-0.83 pulled the pooled result below propagation alone, the one at 0.91 lifted it
MIN_NETWORK_STEPS = 60
MIN_PAINTED_DICE = 0.85
#: the network's share of the pooled log-probabilities (0: propagation alone, 1: the network alone)
NETWORK_WEIGHT = 0.5
#: ... when one painted slice holds structures. Ten one-slice paintings of the five effort volumes
#: (docs/experiments/2026-12-07-one-slice-network-share.md), mean Dice on never-painted slices: 0.734
#: propagation + intensity alone, 0.722 with a share of 0.25, 0.689 with 0.5; at 0.5 the network added
#: at most 0.026 and cost up to 0.22 (both brain1)
ONE_SLICE_WEIGHT = 0.0
#: seconds kept back from the budget for prediction and pooling after the fine-tune
_PREDICT_RESERVE = 0.15


@dataclass
class Completion:
    """A completed painting and how it was made.

    Attributes:
        labels: (Z, Y, X) label map in the painting's values (uint8, or uint16 above 255).
        sources: ``"propagation"``, ``"propagation + network"``, or ``"network"`` (scribbles: scribble_completion.py).
        propagation: the propagated probabilities (``FilledSlices``), refined by the intensity evidence.
        network: the fine-tune's result (model, config, reports), None when none was trained.
        notes: what the user should know (a network left out and why, classes absent ...).
        seconds: wall time of each stage.
        evidence: how strongly intensities were trusted, and the held-out Dice that chose it (None: off).
        suggestion: the slice to paint next (the least certain one; None when every slice is painted).
    """

    labels: np.ndarray
    sources: str
    propagation: FilledSlices
    network: TrainResult | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    evidence: Calibration | None = None
    suggestion: Suggestion | None = None

    def __post_init__(self) -> None:
        if self.suggestion is None and len(self.propagation.painted) < self.labels.shape[0]:
            self.suggestion = suggest_slice(self.propagation)

    def summary(self) -> str:
        """``propagation + network (312 steps): 14 slices filled from 6 painted in 171 s``."""
        steps = f" ({len(self.network.reports)} steps)" if self.network is not None else ""
        total = sum(self.seconds.values())
        depth = self.labels.shape[0]
        n = len(self.propagation.painted)
        weighed = f"; {self.evidence.choice}" if self.evidence is not None and self.evidence.choice.changes else ""
        return f"{self.sources}{steps}: {depth - n} slices filled from {n} painted in {total:.0f} s{weighed}"


def pool(propagated: np.ndarray, network: np.ndarray, weight: float) -> np.ndarray:
    """Log-linear pooling of two (C, ...) probability maps: ``p^(1 - w) q^w``, renormalised.

    Returns the argmax channel index (int64, the shape without C); a tie keeps the lower class.
    """
    eps = np.float32(1e-4)  # a source that is sure a class is absent must not veto the other alone
    logp = (1.0 - weight) * np.log(propagated.astype(np.float32) + eps)
    logp += weight * np.log(network.astype(np.float32) + eps)
    return np.argmax(logp, axis=0)


def complete(
    image: np.ndarray,
    painting: np.ndarray,
    *,
    config: ModelConfig | None = None,
    init: str | os.PathLike[str] | None = None,
    train: TrainConfig | None = None,
    class_names: dict[int, str] | None = None,
    slices: list[int] | None = None,
    model_out: str | os.PathLike[str] | None = None,
    network: bool = True,
    network_weight: float | None = None,
    evidence: bool = True,
    on_first: Callable[[np.ndarray], None] | None = None,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    background_label: int | None = None,
    previous: Completion | None = None,
) -> Completion:
    """Complete a painting into a label map of the whole volume (module docstring).

    Args:
        image: (Z, Y, X) intensities.
        painting: (Z, Y, X) label map; slices with any label are painted, 0 on them is background.
        config, init, class_names, slices: as ``training.finetune``.
        train: the fine-tune's settings; ``time_budget`` covers everything here, propagation included.
        model_out: also save the fine-tuned model there (``.safetensors``).
        network: False: propagation alone (seconds, no training).
        network_weight: the network's share in the pooling (0..1); None: :func:`network_share` of the
            painting. A share of 0 trains the network only for ``model_out``.
        evidence: weigh the propagation by the intensity evidence (``inference.intensity``).
        on_first: called with the propagated label map as soon as it exists (before any training), and
            again when the intensity evidence has refined it (when it changed anything).
        callback: the fine-tune's step reports; cancel: polled by every stage.
        background_label: scribbles (0 = not annotated, this label = background): axial slices with a
            background and a structure's stroke are grown into whole slices along the image and
            completed as painted ones; without such a slice the network alone learns the marked pixels
            (``scribble_completion``).
        previous: a correction: the last completion of the same image (with ``init`` its model). The
            stretches between painted slices that the correction did not touch are copied from its
            propagation, and the intensity strength it chose is kept instead of calibrated again, so
            the correction's seconds go to the network.

    Raises:
        Cancelled: the run was cancelled (nothing is returned, nothing saved).
    """
    started = time.perf_counter()
    train = train or TrainConfig()
    check_image(image)
    painting = check_labels(painting, image.shape, "painting")
    # --- scribbles and corrections (issue 29): their own path, and the init model's classes checked first
    if background_label is not None:
        from .scribble_completion import complete_scribbles, fill_for_completion

        grown = fill_for_completion(image, painting, background_label)
        if grown is not None:  # strokes grown into whole axial slices: the whole-slice path from them
            extra = sorted({*grown.slices.tolist(), *(slices or [])})  # (slices: all-background ones)
            done = complete(image, grown.painting, config=config, init=init, train=train, class_names=class_names,
                            slices=extra, model_out=model_out, network=network,
                            network_weight=network_weight, evidence=evidence, on_first=on_first,
                            callback=callback, cancel=cancel, previous=previous)  # fmt: skip
            grown.overlay(done.labels, done.notes)
            return done
        if not network:
            raise EngineError("these scribbles can be completed by the network alone (no axial slice has both a "
                              "background stroke and a structure's stroke to grow into a whole slice), so a run "
                              "without the network has nothing to fill them with")

        fill = complete_scribbles(image, painting, background_label, config=config, init=init, train=train,
                                  class_names=class_names, slices=slices, model_out=model_out,
                                  predict_reserve=_PREDICT_RESERVE, callback=callback, cancel=cancel)
        return Completion(fill.labels, "network", fill.filled, fill.network, fill.notes, fill.seconds)
    if network:
        from .training.finetune import check_init_classes

        check_init_classes(init, painting)  # before propagation: one sentence, no wasted seconds
    # ---
    index = annotated_slices(painting, slices)
    if len(index) == 0:
        raise EngineError("no painted slice: paint at least one axial slice")
    unpooled = ""  # why the network gets no share, if it gets none
    if network_weight is None:
        network_weight = network_share(painting, index)
        if network_weight == 0:
            unpooled = ("one painted slice holds structures, so the network is not pooled (shown one slice it "
                        "learns that slice's shapes); paint a second slice and it joins")
    elif not 0.0 <= network_weight <= 1.0:
        raise EngineError(f"network_weight must be in [0, 1], got {network_weight}")
    elif network_weight == 0:
        unpooled = "network_weight 0: the network is not pooled"
    seconds: dict[str, float] = {}

    def poll() -> bool:
        return cancel is not None and cancel()

    # a previous result helps only if it was made the same way (refined slices are reused as they are)
    if previous is not None and (previous.evidence is not None) != evidence:
        previous = None
    prop = propagate(image, painting, index, previous=None if previous is None else previous.propagation,
                     cancel=poll)
    chosen = None
    if evidence and on_first is not None:
        # the plain propagation at once: weighing it by the intensities (calibration above all) takes as
        # long again, a minute on a 189-slice MR on a busy CPU; the refined map follows below
        plain = prop.label_map()
        _keep_painting(plain, painting, index)
        on_first(plain)
    if evidence:
        bins = intensity_bins(image)
        if previous is not None:  # the strength the painting chose still holds after one more slice
            chosen = previous.evidence
        else:
            chosen = calibrate(image, prop, bins, lambda im, lab, p: propagate(im, lab, p, cancel=poll),
                               cancel=poll)
        prop = refine(prop, bins, chosen.choice, cancel=poll)
    first = prop.label_map()
    _keep_painting(first, painting, index)
    seconds["propagation"] = time.perf_counter() - started
    if on_first is not None and (chosen is None or chosen.choice.changes):  # (else: the map shown already)
        on_first(first)
    if not network:
        return Completion(first, "propagation", prop, seconds=seconds, evidence=chosen)
    if unpooled and model_out is None:  # nothing would use the network: the result is ready now
        return Completion(first, "propagation", prop, notes=[unpooled], seconds=seconds, evidence=chosen)

    from .training import finetune

    budget = train.time_budget
    if budget is not None:
        left = budget * (1.0 - _PREDICT_RESERVE) - (time.perf_counter() - started)
        if left <= 0:
            note = f"the {budget:g} s budget was used by propagation; the result is propagation alone"
            return Completion(first, "propagation", prop, notes=[note], seconds=seconds, evidence=chosen)
        train = replace(train, time_budget=left)
    t = time.perf_counter()
    result = finetune(image, painting, config=config, init=init, train=train, slices=slices,
                      class_names=class_names, out=model_out, callback=callback, cancel=poll)  # fmt: skip
    if result.stopped == "cancelled":
        raise Cancelled("completion cancelled")
    seconds["fine-tune"] = time.perf_counter() - t
    notes = list(result.notes)
    if unpooled:
        notes.append(unpooled + "; the model is saved for that")
        return Completion(first, "propagation", prop, result, notes, seconds, chosen)
    weak = _weak_network(result)
    if weak:
        notes.append(weak + "; the result is propagation alone")
        return Completion(first, "propagation", prop, result, notes, seconds, chosen)

    t = time.perf_counter()
    probabilities = predict_fine_tuned(result, image, train, model_out, poll)
    table = ClassTable.from_config(result.config)
    aligned = _align(prop, table)
    labels = np.empty(image.shape, np.uint8 if table.values[-1] <= 255 else np.uint16)
    for z in range(image.shape[0]):  # slice by slice: two (C, Y, X) maps at a time, not two volumes
        labels[z] = table.to_values(pool(aligned[:, z], probabilities[:, z], network_weight))
    _keep_painting(labels, painting, index)
    result.model.cpu()
    seconds["prediction"] = time.perf_counter() - t
    return Completion(labels, "propagation + network", prop, result, notes, seconds, chosen)


def network_share(painting: np.ndarray, index: np.ndarray) -> float:
    """The network's default share of the pooling: :data:`ONE_SLICE_WEIGHT` when a single one of the
    painted slices ``index`` of the (Z, Y, X) ``painting`` holds structures (the others all background),
    else :data:`NETWORK_WEIGHT`."""
    holding = sum(bool(np.any(painting[int(z)])) for z in index)
    return ONE_SLICE_WEIGHT if holding <= 1 else NETWORK_WEIGHT


def _weak_network(result: TrainResult) -> str:
    """Why a fine-tuned network should not be pooled, or '' when it may."""
    steps = len(result.reports)
    if steps < MIN_NETWORK_STEPS and not result.warm:  # a correction goes on from a trained model
        return f"the network trained only {steps} steps in the time it had (at least {MIN_NETWORK_STEPS} needed)"
    fit = max(result.answers.values(), default=float("nan"))
    if fit == fit and fit < MIN_PAINTED_DICE:  # NaN: no score (paper preset), trust the steps
        return f"the network fits its own painted slices poorly (Dice {fit:.2f})"
    return ""


def _align(prop: FilledSlices, table: ClassTable) -> np.ndarray:
    """Propagated probabilities in the model's class order (a class nobody painted gets 0)."""
    if tuple(int(v) for v in prop.classes) == table.values:
        return prop.probabilities
    out = np.zeros((len(table), *prop.probabilities.shape[1:]), np.float32)
    lookup = {v: i for i, v in enumerate(table.values)}
    for channel, value in enumerate(prop.classes.tolist()):
        out[lookup[int(value)]] = prop.probabilities[channel]
    return out


def _keep_painting(labels: np.ndarray, painting: np.ndarray, index: np.ndarray) -> None:
    """Painted slices come back exactly as painted (in place)."""
    labels[index] = painting[index]
