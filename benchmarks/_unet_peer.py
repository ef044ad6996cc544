"""The MONAI U-Net peer of the few-shot benchmark: our fine-tune recipe with another network.

A user who knows U-Nets asks how ours compares with one trained the same way. So only the network
differs: MONAI's ``BasicUNet`` (2D) goes through the engine's own pieces, not copies of them:

* the painted slices, their normalisation and resizing to the model's input side: ``SliceSet.from_volume``;
* the loop: ``engine.training.fit`` itself, hence the same batch sampling (``SliceSet.sample`` with a
  generator seeded by ``TrainConfig.seed``), augmentation (``augment_batch``), loss (the one-output case of
  ``deep_supervision_loss``: ``ce_weight * CE + dice_weight * soft Dice``), AdamW with the same lr and
  weight decay, the ``scheduled_lr`` poly decay, the time budget, autocast and ``configure_threads``;
* prediction: ``engine.predictor.Predictor``, hence the same slice resizing there and back.

``fit`` expects a Sim-MPNet: a list of heads from ``forward`` and a ``memory_step`` after each optimiser
step. :class:`SingleOutputUNet` gives both: one head, and a ``memory_step`` that says there is no bank.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from napari_smp.config import ModelConfig, TrainConfig
from napari_smp.engine.device import resolve_device
from napari_smp.engine.errors import EngineError
from napari_smp.engine.training.finetune import TrainResult
from napari_smp.engine.training.loop import fit
from napari_smp.engine.training.slice_set import SliceSet
from napari_smp.engine.volumes import annotated_slices, check_image, check_labels

__all__ = ["UNET_FEATURES", "SingleOutputUNet", "finetune_unet"]

#: channels of BasicUNet's five encoder levels and of its last decoder level (MONAI's layout)
UNET_FEATURES = (16, 32, 64, 128, 256, 16)


class SingleOutputUNet(nn.Module):
    """MONAI ``BasicUNet`` (2D) shaped like the engine's models: a one-element list of logits.

    Args:
        in_channels: input channels (the ``ModelConfig``'s).
        num_classes: output classes, background included.
        features: see :data:`UNET_FEATURES`.
    """

    def __init__(self, in_channels: int, num_classes: int, features: tuple[int, ...] = UNET_FEATURES) -> None:
        super().__init__()
        from monai.networks.nets import BasicUNet  # optional dependency: only this peer needs it

        self.net = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, features=features)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, S, S) images in [0, 1] -> ``[(B, num_classes, S, S) logits]``."""
        return [self.net(x)]

    def memory_step(self, loss: float) -> dict[str, object]:
        """No memory bank to update; the report's K is None as for ``use_memory=False``."""
        return {"k": None, "warming_up": False}


def finetune_unet(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    config: ModelConfig,
    train: TrainConfig,
    slices: list[int] | None = None,
) -> TrainResult:
    """Train a :class:`SingleOutputUNet` on the painted slices of one volume, as ``finetune`` trains ours.

    Args:
        image: (Z, Y, X) intensities.
        labels: (Z, Y, X) sparse label map; annotated slices only are used (``annotated_slices``).
        config: the settings ours runs with; its normalisation, input side, channels and classes are used.
        train: the very ``TrainConfig`` of our runs (steps, budget, batch, lr, schedule, seed, threads).
        slices: extra slice indices to count as annotated background.

    Returns:
        The engine's ``TrainResult``; ``result.model`` goes straight into ``Predictor``.
    """
    check_image(image)
    labels = check_labels(labels, image.shape)
    index = annotated_slices(labels, slices)
    if len(index) == 0:
        raise EngineError("no annotated slice: paint at least one axial slice")
    if int(labels[index].max()) >= config.num_classes:
        raise EngineError(f"the annotation uses label {int(labels[index].max())}; config has {config.num_classes}")
    torch.manual_seed(train.seed)  # the weights' init, seeded where finetune seeds ours
    model = SingleOutputUNet(config.in_channels, config.num_classes).to(resolve_device(train.device))
    data = SliceSet.from_volume(image, labels, index, config, soft=train.soft_labels)
    reports, stopped = fit(model, data, train)
    return TrainResult(model.cpu(), config, reports, stopped, index)
