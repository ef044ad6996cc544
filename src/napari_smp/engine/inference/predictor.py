"""Slice-wise prediction of a whole volume, built from a checkpoint (nnU-Net's predictor split).

Memory stays bounded: slices go through in batches and only one batch of full-resolution logits
exists at a time; class probabilities for the whole volume are produced only on request, in
float16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...config import InferConfig, ModelConfig
from ...model import ClusterReadout
from ..checkpoint import is_pretrained_checkpoint, load_checkpoint
from ..classes import ClassTable
from ..device import autocast, autocast_dtype, configure_threads, resolve_device
from ..errors import Cancelled, EngineError
from ..slices import resize_labels, resize_slices, slice_stack
from ..volumes import check_image, check_spacing, normalize_volume

__all__ = ["Predictor", "Prediction", "ClusterMaps", "ProgressFn", "CancelFn"]

ProgressFn = Callable[[int, int], None]  # (slices done, slices total)
CancelFn = Callable[[], bool]


@dataclass
class Prediction:
    """Result of ``Predictor.predict``.

    Attributes:
        labels: (Z, Y, X) the answer's argmax in the user's label values (``Predictor.classes``), uint8
            (uint16 past the value 255).
        probabilities: (C, Z, Y, X) float16 softmax by class index, only when asked for.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None


@dataclass
class ClusterMaps:
    """Memory-bank clusters of one DMW-LA module over a range of slices, at image resolution.

    Attributes:
        module: the module's name (``SimMPNet.memory_modules``).
        slices: indices of the slices covered, (S,).
        assignment: (S, Y, X) int16 cluster index of every pixel.
        similarity: (K, S, Y, X) float16 cosine similarity of every pixel to every prototype.
        stride: input pixels (of the model's square input) per feature cell of the module.
    """

    module: str
    slices: np.ndarray
    assignment: np.ndarray
    similarity: np.ndarray
    stride: int


class Predictor:
    """Segments volumes slice by slice with a trained Sim-MPNet.

    Args:
        model: a ``SimMPNet`` (put in eval mode here).
        config: the model's config (normalisation, input size, classes).
        infer: device, batch size and autocast settings.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: ModelConfig,
        infer: InferConfig | None = None,
        strict_device: bool = False,
    ) -> None:
        self.infer = infer or InferConfig()
        self.config = config
        self.device = resolve_device(self.infer.device, strict=strict_device)
        self.dtype = autocast_dtype(self.device, self.infer.amp)
        if self.device.type == "cpu":
            configure_threads(self.infer.threads)
        self.model = model.to(self.device).eval()

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, infer: InferConfig | None = None, strict_device: bool = False
    ) -> Predictor:
        if is_pretrained_checkpoint(path):
            raise EngineError(
                f"{Path(path).name} is a pre-trained encoder whose heads were never trained; "
                "fine-tune it on painted slices first (finetune --init)"
            )
        model, config = load_checkpoint(path)
        return cls(model, config, infer, strict_device=strict_device)

    @property
    def class_names(self) -> list[str]:
        """Name of every class index (``classes.by_value`` maps the output's values to names)."""
        return self.config.names

    @property
    def classes(self) -> ClassTable:
        """The model's class table: which label values its outputs carry, and their names."""
        return ClassTable.from_config(self.config)

    def _batches(self, depth: int) -> list[range]:
        bs = max(1, int(self.infer.batch_size))
        return [range(s, min(s + bs, depth)) for s in range(0, depth, bs)]

    def _input(self, norm: np.ndarray, index: np.ndarray | range) -> torch.Tensor:
        """(N, in_channels, S, S) network input for slices ``index`` of the normalised (Z, Y, X) volume."""
        x = slice_stack(norm, np.asarray(index), self.config.slice_context, self.config.in_channels)
        return resize_slices(x.to(self.device), self.config.img_size)

    @torch.inference_mode()
    def predict(
        self,
        volume: np.ndarray,
        spacing: tuple[float, float, float] | None = None,
        *,
        probabilities: bool = False,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> Prediction:
        """Segment every axial slice of ``volume``.

        Args:
            volume: (Z, Y, X) intensities, as read by ``napari_smp.io``.
            spacing: voxel size in mm (Z, Y, X); the 2D network does not need it, it is accepted so
                callers pass geometry along and for future in-plane resampling.
            probabilities: also return (C, Z, Y, X) float16 class probabilities.
            progress: called with (done, total) after every batch.
            cancel: polled between batches; when it returns True, ``Cancelled`` is raised.
        """
        check_image(volume)
        check_spacing(spacing)
        depth, height, width = volume.shape
        norm = normalize_volume(volume, self.config.norm)
        n_cls = self.config.num_classes
        table = self.classes
        labels = table.to_values(np.zeros(volume.shape, np.uint8))  # the user's values, uint8 or uint16
        probs = np.zeros((n_cls, depth, height, width), dtype=np.float16) if probabilities else None
        for idx in self._batches(depth):
            if cancel is not None and cancel():
                raise Cancelled("prediction cancelled")
            with autocast(self.device, self.dtype):
                heads = self.model(self._input(norm, idx))
            logits = resize_slices(torch.stack(heads).sum(0).float(), (height, width))
            labels[idx.start : idx.stop] = table.to_values(logits.argmax(1).to(torch.int32).cpu().numpy())
            if probs is not None:
                probs[:, idx.start : idx.stop] = logits.softmax(1).transpose(0, 1).half().cpu().numpy()
            if progress is not None:
                progress(idx.stop, depth)
        return Prediction(labels=labels, probabilities=probs)

    def memory_modules(self) -> list[str]:
        """Names of the DMW-LA modules whose clusters can be shown."""
        return [name for name, _ in self.model.memory_modules()]

    @torch.inference_mode()
    def clusters(
        self,
        volume: np.ndarray,
        module: str,
        slices: range | list[int] | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> ClusterMaps:
        """Cluster assignment and prototype similarity of one DMW-LA module, at image resolution.

        Args:
            volume: (Z, Y, X) intensities.
            module: one of ``memory_modules()``.
            slices: which axial slices (default: all).
        """
        check_image(volume)
        norm = normalize_volume(volume, self.config.norm)
        index = np.arange(volume.shape[0]) if slices is None else np.asarray(list(slices), dtype=np.int64)
        h, w = volume.shape[1:]
        assign, sims, stride = [], [], 1
        bs = max(1, int(self.infer.batch_size))
        for start in range(0, len(index), bs):
            if cancel is not None and cancel():
                raise Cancelled("cluster computation cancelled")
            chunk = index[start : start + bs]
            out = ClusterReadout(self.model).maps(self._input(norm, chunk), module)
            stride = int(out["stride"])
            assign.append(resize_labels(out["assignment"], (h, w)).to(torch.int16).cpu().numpy())
            sims.append(resize_slices(out["similarity"].float(), (h, w)).half().cpu().numpy())
            if progress is not None:
                progress(min(start + bs, len(index)), len(index))
        similarity = np.concatenate(sims, axis=0).transpose(1, 0, 2, 3)
        return ClusterMaps(module, index, np.concatenate(assign), np.ascontiguousarray(similarity), stride)
