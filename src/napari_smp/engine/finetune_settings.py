"""A fine-tune's settings as a front end collects them (the Fine-tune widget's controls) -> the engine's
configs, and where to suggest saving the model. numpy only (no torch): the widget checks them on the
viewer's thread before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._cpu import viewer_threads
from ..config import ModelConfig, NormConfig, TrainConfig
from .classes import ClassTable
from .errors import EngineError

__all__ = ["WLDSettings", "model_config_for", "train_config_for", "suggest_checkpoint_path", "REFINE_STEPS",
           "REFINE_BUDGET"]

#: a correction's run: at most this many steps and seconds, propagation and prediction included. Measured on the
#: phantom (2 cores, idle): 0.9 s of propagation (the touched stretches only), about 15 warm steps, 1.3 s of
#: prediction; issue 29 asks for 15 s from the stroke to the refreshed layer
REFINE_STEPS = 30
REFINE_BUDGET = 12.0


@dataclass
class WLDSettings:
    """The W-LD settings: K start (0 = M/2), K bounds as fractions of M, and what happens out of bounds."""

    k_init: int = 0
    k_low: float = 0.25
    k_high: float = 0.75
    k_policy: str = "reset"

    def check(self, slots: int) -> None:
        """Refuse settings a bank of ``slots`` slots cannot follow (:class:`EngineError`, one sentence)."""
        if not 0.0 <= self.k_low < self.k_high <= 1.0:
            raise EngineError(f"K bounds must satisfy 0 <= low < high <= 1; got {self.k_low} and {self.k_high}")
        if self.k_init and not self.k_low * slots <= self.k_init <= self.k_high * slots:
            raise EngineError(f"K start {self.k_init} lies outside the bounds "
                              f"[{self.k_low * slots:g}, {self.k_high * slots:g}] of {slots} slots")
        if self.k_policy not in ("reset", "clamp"):
            raise EngineError(f"K policy must be reset or clamp, not {self.k_policy!r}")


def model_config_for(preset: str, labels: np.ndarray, wld: WLDSettings, norm: NormConfig,
                     class_names: dict[int, str] | None = None, base: ModelConfig | None = None,
                     img_size: int = 0, use_memory: bool | None = None) -> ModelConfig:
    """The config of a new model: preset (or ``base``), classes from the labels, W-LD from the settings.

    Args:
        labels: (Z, Y, X) painted label map; its values (and the named ones) are the model's classes,
            kept as the user's values (``ClassTable``): a painting of 5 and 52 makes a 3-class model.
        class_names: label value -> name from the labels layer.
        img_size: network input side (a multiple of 32); 0 keeps the preset's (or ``base``'s).
        use_memory: True builds the network with DMW-LA and its memory bank, False without (the plain
            ablation); None keeps the preset's (or ``base``'s) choice.
    """
    base = base or ModelConfig(preset=preset)
    if img_size:
        base = replace(base, img_size=img_size)  # ModelConfig refuses a side that is not a multiple of 32
    wld.check(base.memory.slots)
    memory = replace(base.memory, k_init=wld.k_init or None, k_low=wld.k_low, k_high=wld.k_high,
                     k_policy=wld.k_policy)
    config = replace(base, memory=memory, norm=norm, use_memory=base.use_memory if use_memory is None else use_memory)
    return ClassTable.from_painting(labels, class_names).configure(config)


def train_config_for(steps: int, time_budget: float, device: str, base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (defaults when None) with the given steps (0 = until the time budget), time budget
    (seconds, 0 = none), device, and the threads that leave the viewer a core."""
    base = base or TrainConfig()
    return replace(base, steps=int(steps) or None, time_budget=float(time_budget) or None, device=device,
                   threads=base.threads or viewer_threads())


def suggest_checkpoint_path(image_name: str, source: str = "", folder: str | Path | None = None) -> Path:
    """``<folder of the image file, or folder>/<image name>-finetuned.safetensors``."""
    where = Path(source).parent if source else Path(folder or Path.cwd())
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in image_name) or "model"
    return where / f"{stem}-finetuned.safetensors"
