"""A fine-tuned model applied to its whole volume inside a completion, leaving nothing behind on Cancel.

Shared by ``completion.complete`` (painted slices) and ``scribble_completion.complete_scribbles``: both
fine-tune with ``finetune(..., out=model_out)``, which saves the model before prediction starts, so a
cancel during prediction must remove that file again (a cancelled run leaves no output).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import InferConfig, TrainConfig
from .errors import Cancelled

if TYPE_CHECKING:
    from .training import TrainResult

__all__ = ["predict_fine_tuned"]


def predict_fine_tuned(
    result: TrainResult,
    image: np.ndarray,
    train: TrainConfig,
    model_out: str | os.PathLike[str] | None,
    cancel: Callable[[], bool] | None,
) -> np.ndarray:
    """(Z, Y, X) image -> (C, Z, Y, X) class probabilities of ``result.model`` on the run's device.

    Raises:
        Cancelled: ``cancel()`` turned true; ``model_out`` (saved by the fine-tune) is removed first.
    """
    from .inference import Predictor

    infer = InferConfig(device=train.device, threads=train.threads)
    try:
        predicted = Predictor(result.model, result.config, infer).predict(image, probabilities=True, cancel=cancel)
        return predicted.probabilities
    except Cancelled:
        if model_out is not None:
            Path(model_out).unlink(missing_ok=True)
        raise
