"""Segment widget: a checkpoint (or a model fine-tuned in this session) applied to an image layer.

The result is a new Labels layer on the image's grid with the model's class names; no existing layer
is touched. Prediction runs in a worker, slice batches report to napari's activity bar, and Cancel
stops at the next batch. The worker also lists the classes found (``np.unique`` over a 512 x 512 x 20
CT took 0.1-0.3 s, too long for the viewer's thread), so the main thread only adds the layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QSpinBox

from ._controls import DeviceCombo, LayerCombo, field_row, spin_box
from ._jobs import EngineJob, JobContext, JobWidget
from ._layers import derived_layer_kwargs, unique_name, volume_of, volume_spacing
from ._session import ModelChoice, ModelPicker

__all__ = ["SegmentWidget", "Segmentation", "predict_job"]


@dataclass
class Segmentation:
    """What the worker hands back: the label map (Z, Y, X), value -> class name, and the names found in it."""

    labels: np.ndarray
    names: dict[int, str]
    found: list[str]


def predict_job(choice: ModelChoice, volume: np.ndarray, spacing: tuple[float, ...], device: str,
                batch: int, *, largest_component: bool = False, min_island_ml: float = 0.0) -> Any:
    """The worker's work: build a predictor and segment ``volume`` (Z, Y, X); returns a :class:`Segmentation`.

    ``largest_component`` / ``min_island_ml``: the optional clean-up (:func:`~napari_smp.engine.cleanup.clean_labels`).
    """

    def work(ctx: JobContext) -> Segmentation:
        predictor = choice.predictor(device, batch)
        out = predictor.predict(volume, spacing, progress=ctx.progress, cancel=ctx.cancelled)
        labels = out.labels
        if largest_component or min_island_ml > 0:
            from ..engine.cleanup import clean_labels

            labels = clean_labels(labels, spacing, largest_component=largest_component,
                                  min_island_ml=min_island_ml).labels
        names = predictor.classes.by_value
        found = [names[int(v)] for v in np.unique(labels) if v and int(v) in names]
        return Segmentation(labels, names, found)

    return work


class SegmentWidget(JobWidget):
    """Image -> new Labels layer.

    Args:
        napari_viewer: the viewer (napari injects it when the widget is opened from the Plugins menu).
    """

    def __init__(self, napari_viewer: Any) -> None:
        import napari

        super().__init__(napari_viewer, "Segment")
        self.image_combo = LayerCombo(napari_viewer, napari.layers.Image)
        self.model_picker = ModelPicker()
        self.device_combo = DeviceCombo()
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 64)
        self.batch_spin.setValue(2)  # small batches: Cancel is polled between them
        self.batch_spin.setToolTip("axial slices per forward pass; smaller stops sooner on Cancel")
        self.form.addRow("image", self.image_combo)
        self.form.addRow("model", self.model_picker)
        self.form.addRow("device", self.device_combo)
        self.form.addRow("slices per batch", self.batch_spin)
        self.largest_check = QCheckBox("largest piece")
        self.largest_check.setToolTip("keep only the largest 3D connected piece of each class")
        self.island_spin = spin_box(QDoubleSpinBox(), 0.0, 10000.0, 0.0, 0.5, " mL")
        self.island_spin.setSpecialValueText("keep islands")
        self.island_spin.setToolTip("drop pieces of a class smaller than this (its largest piece always stays)")
        self.form.addRow("clean-up", field_row(self.largest_check, self.island_spin))
        self.run_button.clicked.connect(self.run)
        self.result_layer: Any = None

    def run(self) -> EngineJob | None:
        """Start segmenting the chosen image; returns the job (None when the input is not usable)."""
        image = self.image_combo.layer()
        if image is None:
            self.fail("add or choose an image layer to segment")
            return None
        try:
            choice = self.model_picker.choice()
            volume = volume_of(image)
        except ValueError as err:
            self.fail(str(err))
            return None
        flat = image.data.ndim == 2 if not getattr(image, "multiscale", False) else image.data[0].ndim == 2
        work = predict_job(choice, volume, volume_spacing(image), self.device_combo.device(), self.batch_spin.value(),
                           largest_component=self.largest_check.isChecked(), min_island_ml=self.island_spin.value())
        return self.start_job(work, lambda res: self._apply(image, res, flat), "Segment",
                              f"segmenting '{image.name}' with {choice.describe()}...")

    def _apply(self, image: Any, result: Segmentation, flat: bool) -> None:
        name = unique_name([ly.name for ly in self.viewer.layers], f"{image.name} segmentation")
        data = result.labels[0] if flat else result.labels
        self.result_layer = self.viewer.add_labels(data, name=name,
                                                   **derived_layer_kwargs(image, class_names=result.names))
        self.status.setText(f"'{name}': {', '.join(result.found) if result.found else 'nothing found'}")
