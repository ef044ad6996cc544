"""The Fine-tune widget's job, Qt-free: what Start runs in the worker and what it hands back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ModelConfig
from ..engine.classes import ClassTable
from ..engine.finetune_settings import WLDSettings, model_config_for
from ._jobs import JobContext
from ._session import ModelChoice

__all__ = ["FinetuneResult", "FirstLabels", "finetune_work"]


@dataclass
class FinetuneResult:
    """What the worker hands back.

    Attributes:
        train: the engine's ``TrainResult``; None when no network was trained (the budget went to
            propagation).
        path: where the model was saved (None without a network).
        requested: the path the user asked for.
        completion: the ``Completion`` of a run that filled the volume (None for a fine-tune alone).
        classes: label value -> name for the result layer.
    """

    train: Any
    path: Path | None
    requested: Path
    completion: Any = None
    classes: dict[int, str] | None = None


@dataclass
class FirstLabels:
    """The propagated (Z, Y, X) label map, reported from the worker as soon as it exists."""

    labels: np.ndarray
    classes: dict[int, str]


def finetune_work(volume: np.ndarray, labels: np.ndarray, choice: ModelChoice, wld: WLDSettings,
                  names: dict[int, str] | None, train: Any, requested: Path, fill: bool, *,
                  base: ModelConfig | None = None, img_size: int = 0, background: list[int] | None = None,
                  use_memory: bool = True, cluster_bank: bool = False, background_label: int | None = None,
                  previous: Any = None) -> Callable[[JobContext], FinetuneResult]:
    """The Start button's work, run in the worker: ``engine.complete`` (``fill``) or ``finetune`` alone.

    Args:
        volume, labels: (Z, Y, X) copies taken when Start was pressed.
        choice: the model to start from (a preset, a file or a session model).
        base: the widget's ``model_config_override`` for a new model.
        cluster_bank: a new model's bank laid out for the Clusters views (``ModelConfig.with_cluster_bank``).
        previous: a correction's last ``Completion`` of the same image (``complete(previous=...)``).
    """

    def work(ctx: JobContext) -> FinetuneResult:
        from ..engine.checkpoint import free_checkpoint_path
        from ..engine.volumes import guess_norm

        if choice.kind == "preset":
            norm = base.norm if base is not None else guess_norm(volume)
            classes, named = labels, names
            if background_label is not None:  # B is background (0) for the model, not a class of its own
                classes = np.where(labels == background_label, 0, labels)
                named = {v: n for v, n in (names or {}).items() if v != background_label}
            config = model_config_for(choice.preset, classes, wld, norm, named, base, img_size=img_size,
                                      use_memory=use_memory)
            config = config.with_cluster_bank() if cluster_bank else config
            init = None
        else:
            config = None
            init = choice.path if choice.kind == "file" else choice.session.path
        out = free_checkpoint_path(requested)
        if not fill:
            from ..engine.training import finetune

            result = finetune(volume, labels, out=out, config=config, init=init, train=train,
                              slices=background, class_names=names, callback=ctx.report, cancel=ctx.cancelled,
                              background_label=background_label)
            return FinetuneResult(result, result.path, requested)
        from ..engine import complete

        painted = ClassTable.from_painting(labels, names).by_value  # here, not on the viewer's thread
        done = complete(volume, labels, config=config, init=init, train=train, class_names=names,
                        slices=background, model_out=out, callback=ctx.report, cancel=ctx.cancelled,
                        on_first=lambda first: ctx.report(FirstLabels(first, painted)),
                        background_label=background_label, previous=previous)
        net = done.network
        classes = ClassTable.from_config(net.config).by_value if net is not None else painted
        return FinetuneResult(net, net.path if net is not None else None, requested, done, classes)

    return work
