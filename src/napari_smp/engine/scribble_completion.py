"""Completing a scribble painting: strokes grown into whole slices, or the network alone.

Scribbles (0 = not annotated, a background label B, strokes on axial, coronal or sagittal slices) say
nothing about most pixels of the slices they touch, and propagation carries whole painted slices
from slice to slice. Two ways, chosen by ``completion.complete``:

1. **Axial slices with a background stroke and a structure's stroke** are grown into whole slices
   along the image (``inference.stroke_fill``: a marker-controlled watershed, milliseconds a slice);
   ``complete`` then runs its whole-slice path (propagation, intensity evidence, network) from them
   (:func:`fill_for_completion`, :meth:`StrokeFill.overlay`).
2. **Otherwise** (strokes on coronal or sagittal slices only, or no axial slice with both kinds): the
   network is fine-tuned on the marked pixels only (``training.finetune(background_label=B)``) and
   applied to every slice (:func:`complete_scribbles`).

Either way the marked pixels keep their marks (B written as 0), and a note says which way was taken.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..config import ModelConfig, TrainConfig
from .annotation import scribble_targets
from .classes import ClassTable
from .errors import Cancelled
from .fine_tuned_prediction import predict_fine_tuned
from .inference.interpolation import FilledSlices
from .inference.stroke_fill import fill_scribbled

if TYPE_CHECKING:
    from .training import StepReport, TrainResult

__all__ = ["complete_scribbles", "fill_for_completion", "ScribbleFill", "StrokeFill", "SCRIBBLE_NOTE", "GROWN_NOTE"]

#: what the user reads about a scribble completion (``{pixels}``, ``{slices}`` filled in)
SCRIBBLE_NOTE = (
    "scribbles: the network alone, trained on the {pixels:,} marked pixels of {slices} axial slices "
    "(propagation carries whole painted slices only)"
)

#: what the user reads when strokes were grown into whole slices (``{slices}``, ``{pixels}``, ``{left}``)
GROWN_NOTE = (
    "scribbles: the strokes of {slices} ({pixels:,} marked pixels) grown into whole slices "
    "along the image's edges, then completed as painted slices{left}"
)


@dataclass
class StrokeFill:
    """Scribbles turned into whole painted slices, ready for ``complete``'s whole-slice path.

    Attributes:
        painting: (Z, Y, X) whole-slice painting: ``slices`` labelled (0 = background), others 0.
        slices: the filled axial slices.
        targets, known: the scribbles as ``annotation.scribble_targets`` gives them (B as 0; marked).
    """

    painting: np.ndarray
    slices: np.ndarray
    targets: np.ndarray
    known: np.ndarray

    def overlay(self, labels: np.ndarray, notes: list[str]) -> None:
        """Write the marks back over a completed map (in place) and say how it was made (first note)."""
        labels[self.known] = self.targets[self.known]
        outside = int(np.count_nonzero(self.known)) - int(np.count_nonzero(self.known[self.slices]))
        left = (f"; {outside:,} marked pixels on other slices are kept as marked but guide nothing (give an "
                "axial slice a background stroke and a stroke for each structure to fill it)") if outside else ""
        pixels = int(np.count_nonzero(self.known[self.slices]))
        n = len(self.slices)
        slices = f"{n} axial slice" + ("s" if n != 1 else "")
        notes.insert(0, GROWN_NOTE.format(slices=slices, pixels=pixels, left=left))


def fill_for_completion(image: np.ndarray, painting: np.ndarray, background_label: int) -> StrokeFill | None:
    """The scribbled axial slices grown into whole slices (way 1 of the module docstring), or None.

    Args:
        image: (Z, Y, X) intensities; painting: (Z, Y, X) scribbles.
    Raises:
        EngineError: bad scribbles (``annotation.check_scribbles``), one sentence, before any work.
    """
    targets, known = scribble_targets(painting, background_label)  # refuses bad scribbles at once
    filled, rows = fill_scribbled(image, painting, background_label)
    if len(rows) == 0:
        return None
    return StrokeFill(filled, rows, targets, known)


@dataclass
class ScribbleFill:
    """A volume filled from scribbles.

    Attributes:
        labels: (Z, Y, X) label map in the painting's values, background 0, marked pixels as marked.
        filled: the network's (C, Z, Y, X) probabilities (what filled the slices); ``painted`` = the
            axial slices with a mark.
        network: the fine-tune's result.
        notes: what the user should know (first: that the network alone filled the volume).
        seconds: wall time of each stage.
    """

    labels: np.ndarray
    filled: FilledSlices
    network: TrainResult
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def complete_scribbles(
    image: np.ndarray,
    painting: np.ndarray,
    background_label: int,
    *,
    config: ModelConfig | None = None,
    init: str | os.PathLike[str] | None = None,
    train: TrainConfig | None = None,
    class_names: dict[int, str] | None = None,
    slices: list[int] | None = None,
    model_out: str | os.PathLike[str] | None = None,
    predict_reserve: float = 0.15,
    callback: Callable[[StepReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ScribbleFill:
    """A label map of the whole volume from scribbles (module docstring).

    Args:
        image: (Z, Y, X) intensities.
        painting: (Z, Y, X) scribbles: 0 = not annotated, ``background_label`` = background.
        predict_reserve: share of ``train.time_budget`` kept back for prediction.
        Others: as ``completion.complete``.

    Raises:
        EngineError: bad scribbles (``annotation.check_scribbles``), one sentence, before any work.
        Cancelled: the run was cancelled (the model it saved is removed).
    """
    from .training import finetune

    started = time.perf_counter()
    train = train or TrainConfig()
    targets, known = scribble_targets(painting, background_label)  # refuses bad scribbles at once
    if train.time_budget is not None:
        train = replace(train, time_budget=train.time_budget * (1.0 - predict_reserve))
    result = finetune(image, painting, config=config, init=init, train=train, slices=slices,
                      class_names=class_names, out=model_out, callback=callback, cancel=cancel,
                      background_label=background_label)  # fmt: skip
    if result.stopped == "cancelled":
        raise Cancelled("completion cancelled")
    seconds = {"fine-tune": time.perf_counter() - started}
    t = time.perf_counter()
    probabilities = predict_fine_tuned(result, image, train, model_out, cancel)
    table = ClassTable.from_config(result.config)
    labels = table.to_values(np.argmax(probabilities, axis=0))
    labels[known] = targets[known]  # what the user marked stays marked; B is background (0)
    result.model.cpu()
    seconds["prediction"] = time.perf_counter() - t
    filled = FilledSlices(
        probabilities=probabilities,
        classes=np.asarray(table.values, np.int64),
        painted=np.asarray(result.slices, np.int64),
        far=np.zeros(image.shape[0], bool),
        method="network",
    )
    note = SCRIBBLE_NOTE.format(pixels=int(np.count_nonzero(known)), slices=len(result.slices))
    return ScribbleFill(labels, filled, result, [note, *result.notes], seconds)
