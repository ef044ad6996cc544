"""Correct widget: an existing segmentation (a file, another tool's result) and a few repainted slices ->
the segmentation with the corrections carried as far as its error goes (``engine.inference.correct_existing``).

The result is a new Labels layer; the segmentation and the corrections layers are never changed. The
corrections may be a layer of their own (the corrected slices only) or a copy of the segmentation the
user edited. Seconds, no network; it runs in a worker with Cancel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._controls import LayerCombo
from ._jobs import EngineJob, JobContext, JobWidget
from ._layers import check_same_grid, class_names_of, derived_layer_kwargs, labels_of, unique_name, volume_of

__all__ = ["CorrectWidget", "correct_job"]


def correct_job(volume: np.ndarray, segmentation: np.ndarray, corrections: np.ndarray) -> Any:
    """The worker's work: ``correct_segmentation`` on (Z, Y, X) arrays; returns its ``Correction``."""

    def work(ctx: JobContext) -> Any:
        from ..engine.inference.correct_existing import correct_segmentation

        return correct_segmentation(volume, segmentation, corrections, cancel=ctx.cancelled)

    return work


class CorrectWidget(JobWidget):
    """Image + segmentation + corrections -> new Labels layer.

    Args:
        napari_viewer: the viewer (napari injects it when the widget is opened from the Plugins menu).
    """

    def __init__(self, napari_viewer: Any) -> None:
        import napari

        super().__init__(napari_viewer, "Correct")
        self.image_combo = LayerCombo(napari_viewer, napari.layers.Image)
        self.segmentation_combo = LayerCombo(napari_viewer, napari.layers.Labels)
        self.corrections_combo = LayerCombo(napari_viewer, napari.layers.Labels)
        self.segmentation_combo.setToolTip("the segmentation to correct (a file you opened, another tool's result)")
        self.corrections_combo.setToolTip("the slices you repainted: a layer of their own, or an edited copy of "
                                          "the segmentation (a slice that equals the segmentation's is no correction)")
        self.form.addRow("image", self.image_combo)
        self.form.addRow("segmentation", self.segmentation_combo)
        self.form.addRow("corrections", self.corrections_combo)
        if self.corrections_combo.count() > 1:  # two different layers by default
            self.corrections_combo.setCurrentIndex(1)
        self.run_button.clicked.connect(self.run)
        self.result_layer: Any = None

    def run(self) -> EngineJob | None:
        """Start correcting; returns the job (None when the inputs are not usable)."""
        image, seg, fix = self.image_combo.layer(), self.segmentation_combo.layer(), self.corrections_combo.layer()
        if image is None or seg is None or fix is None:
            self.fail("choose an image, the segmentation to correct and the layer holding your corrections")
            return None
        if seg == fix:  # napari hands plugins proxies: compare with ==
            self.fail("the corrections must be another layer than the segmentation: copy it (Layers > Duplicate), "
                      "edit the copy and choose it as the corrections")
            return None
        try:
            check_same_grid(seg, fix)
            volume = volume_of(image)
            segmentation, corrections = labels_of(seg, volume.shape), labels_of(fix, volume.shape)
        except ValueError as err:
            self.fail(str(err))
            return None
        names = (class_names_of(seg) or {}) | (class_names_of(fix) or {})
        work = correct_job(volume, segmentation, corrections)
        return self.start_job(work, lambda res: self._apply(seg, res, names), "Correct",
                              f"carrying the corrections of '{fix.name}' through '{seg.name}'...")

    def _apply(self, seg: Any, result: Any, names: dict[int, str]) -> None:
        name = unique_name([ly.name for ly in self.viewer.layers], f"{seg.name} corrected")
        self.result_layer = self.viewer.add_labels(result.labels, name=name,
                                                   **derived_layer_kwargs(seg, class_names=names or None))
        self.status.setText(f"'{name}': {result.summary()}")
