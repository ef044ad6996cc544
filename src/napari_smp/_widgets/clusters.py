"""Clusters widget: what the memory bank of one DMW-LA module has learnt, on the slices you look at.

For the chosen module and slices it adds (all on the image's grid):

- ``clusters <module>``: a Labels layer, value ``c + 1`` for cluster ``c`` (0 stays transparent);
- ``similarity <module> c<c>``: one hidden Image layer per cluster, the cosine similarity of every
  pixel's feature to the cluster's prototypes;
- ``receptive fields <module>``: a Shapes layer with one white rectangle per cluster and slice, the
  bounding box of the cluster's pixels grown by one feature cell
  (``engine.inference.cluster_summary.receptive_field_boxes``);

and fills two tables: the share of pixels each cluster claims and, when a labels layer is chosen,
the share of each cluster's pixels in each class, which says which anatomy a cluster encodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QLabel, QPushButton, QSpinBox

from ._controls import NONE_TEXT, DeviceCombo, LayerCombo, field_row
from ._display import fill_table, make_table
from ._jobs import EngineJob, JobContext, JobWidget, section
from ._layers import class_names_of, derived_layer_kwargs, labels_of, unique_name, volume_of
from ._session import ModelChoice, ModelPicker

if TYPE_CHECKING:  # the module itself is numpy only, but its package loads torch: import it in the worker
    from ..engine.inference.cluster_summary import ClusterSummary

__all__ = ["ClustersWidget"]


class ClustersWidget(JobWidget):
    """Cluster assignment, similarity maps, receptive-field boxes and tables for one DMW-LA module."""

    def __init__(self, napari_viewer: Any) -> None:
        import napari

        super().__init__(napari_viewer, "Show clusters")
        self.image_combo = LayerCombo(napari_viewer, napari.layers.Image)
        self.model_picker = ModelPicker()
        self.device_combo = DeviceCombo()
        self.module_combo = QComboBox()
        self.load_button = QPushButton("Load model")
        self.load_button.clicked.connect(self.load_model)
        mod_row = field_row(self.module_combo, self.load_button, stretch_first=True)
        self.slices_combo = QComboBox()
        self.slices_combo.addItems(["current slice", "slice range"])
        self.first_spin, self.last_spin = QSpinBox(), QSpinBox()
        for spin in (self.first_spin, self.last_spin):
            spin.setRange(0, 100_000)
        range_row = field_row(self.first_spin, QLabel("to"), self.last_spin)
        self._range_row = range_row
        self.labels_combo = LayerCombo(napari_viewer, napari.layers.Labels, allow_none=True)
        self.form.addRow("image", self.image_combo)
        self.form.addRow("model", self.model_picker)
        self.form.addRow("device", self.device_combo)
        self.form.addRow("DMW-LA module", mod_row)
        self.form.addRow("slices", self.slices_combo)
        self.form.addRow("", range_row)
        self.form.addRow("compare with", self.labels_combo)
        self.shares_table = make_table(110)
        self.class_table = make_table(110)
        self.body.addWidget(section("pixels claimed by each cluster"))
        self.body.addWidget(self.shares_table)
        self.body.addWidget(section("cluster x class: share of each cluster's pixels in each class"))
        self.body.addWidget(self.class_table)
        self.slices_combo.currentIndexChanged.connect(lambda *_: range_row.setEnabled(self._use_range()))
        range_row.setEnabled(False)
        self.model_picker.combo.currentIndexChanged.connect(self._forget_model)
        self.model_picker.path_edit.editingFinished.connect(self._forget_model)
        self.run_button.clicked.connect(self.run)
        self._predictor: Any = None
        self._predictor_key: tuple | None = None
        self.layers: list[Any] = []

    def _use_range(self) -> bool:
        return self.slices_combo.currentText() == "slice range"

    def _forget_model(self, *_: Any) -> None:
        self._predictor, self._predictor_key = None, None
        self.module_combo.clear()

    @staticmethod
    def _key(choice: ModelChoice, device: str) -> tuple:
        return (choice.kind, str(choice.path), id(choice.session), device)

    def _loader(self, choice: ModelChoice, device: str) -> Any:
        cached, key = self._predictor, self._predictor_key

        def load() -> Any:
            if cached is not None and key == self._key(choice, device):
                return cached
            return choice.predictor(device, batch_size=1)  # one slice per pass: Cancel answers fast

        return load

    def _remember(self, predictor: Any, key: tuple) -> None:
        self._predictor, self._predictor_key = predictor, key
        modules = predictor.memory_modules()
        current = self.module_combo.currentText()
        self.module_combo.clear()
        self.module_combo.addItems(modules)
        if current in modules:
            self.module_combo.setCurrentText(current)

    def load_model(self) -> EngineJob | None:
        """Load the chosen model in a worker and list its DMW-LA modules."""
        try:
            choice = self.model_picker.choice()
        except ValueError as err:
            self.fail(str(err))
            return None
        device = self.device_combo.device()
        load, key = self._loader(choice, device), self._key(choice, device)

        def done(predictor: Any) -> None:
            self._remember(predictor, key)
            self.status.setText(f"{choice.describe()}: {self.module_combo.count()} DMW-LA modules")

        return self.start_job(lambda ctx: load(), done, "Load model", f"loading {choice.describe()}...")

    def slice_range(self, image: Any, depth: int) -> tuple[int, int]:
        """First and last slice (inclusive) of ``image`` to show: the range, or the slice on screen."""
        if self._use_range():
            first, last = sorted((self.first_spin.value(), self.last_spin.value()))
        elif image.ndim >= 3:
            # the viewer's position is in world units: map it to this layer's slice index
            first = last = int(round(float(image.world_to_data(self.viewer.dims.point)[0])))
        else:
            first = last = 0
        if not 0 <= first <= last < depth:
            raise ValueError(f"slices {first}..{last} are outside the volume (0..{depth - 1})")
        return first, last

    def run(self) -> EngineJob | None:
        """Compute clusters of the chosen module on the chosen slices."""
        image = self.image_combo.layer()
        if image is None:
            self.fail("add or choose an image layer")
            return None
        try:
            choice = self.model_picker.choice()
            volume = volume_of(image)
            first, last = self.slice_range(image, volume.shape[0])
            label_layer = self.labels_combo.layer() if self.labels_combo.currentText() != NONE_TEXT else None
            labels = labels_of(label_layer, volume.shape)[first : last + 1] if label_layer is not None else None
        except ValueError as err:
            self.fail(str(err))
            return None
        module = self.module_combo.currentText()
        device = self.device_combo.device()
        load, key = self._loader(choice, device), self._key(choice, device)
        names = class_names_of(label_layer) if label_layer is not None else None

        def work(ctx: JobContext) -> tuple[Any, ClusterSummary]:
            from ..engine.inference.cluster_summary import summarize_clusters

            predictor = load()
            modules = predictor.memory_modules()
            # the model refuses a module it lacks, or any when it has no memory bank, in one sentence
            mod = module or (modules[-1] if modules else "")
            maps = predictor.clusters(volume, mod, range(first, last + 1), ctx.progress, ctx.cancelled)
            return predictor, summarize_clusters(maps, predictor.config.img_size, labels, names)

        def done(result: tuple[Any, ClusterSummary]) -> None:
            predictor, view = result
            self._remember(predictor, key)
            self.module_combo.setCurrentText(view.maps.module)
            self._apply(image, view, first, names)

        what = f"slice {first}" if first == last else f"slices {first}-{last}"
        return self.start_job(work, done, "Clusters", f"clusters of {module or 'the last module'} on {what}...")

    def _apply(self, image: Any, view: ClusterSummary, first: int, names: dict[int, str] | None) -> None:
        maps = view.maps
        k = len(view.shares)
        taken = [ly.name for ly in self.viewer.layers]
        geo = derived_layer_kwargs(image, z_offset=first)
        new: list[Any] = []
        for c in range(k):
            name = unique_name(taken, f"similarity {maps.module} c{c}")
            taken.append(name)
            sim = maps.similarity[c].astype(np.float32)
            new.append(self.viewer.add_image(sim, name=name, visible=False, colormap="magma",
                                             contrast_limits=(float(sim.min()), float(sim.max()) + 1e-6),
                                             **geo))
        import pandas as pd

        cluster_geo = {**geo, "features": pd.DataFrame({"index": np.arange(k + 1),
                                                          "cluster": ["-"] + [str(c) for c in range(k)]})}
        dtype = np.uint8 if k < 255 else np.uint16
        labels_name = unique_name(taken, f"clusters {maps.module}")
        taken.append(labels_name)
        new.append(self.viewer.add_labels((maps.assignment + 1).astype(dtype), name=labels_name, opacity=0.6,
                                          **cluster_geo))
        if view.boxes:
            shapes_geo = derived_layer_kwargs(image)
            edge = max(1.0, image.data.shape[-1] / 200)
            new.append(self.viewer.add_shapes(
                [b.corners() for b in view.boxes], shape_type="rectangle", edge_color="white",
                face_color="transparent", edge_width=edge, name=unique_name(taken, f"receptive fields {maps.module}"),
                features={"cluster": [b.cluster for b in view.boxes]},
                text={"string": "c{cluster}", "color": "white", "size": 8, "anchor": "upper_left"},
                **shapes_geo))
        self.layers = new
        fill_table(self.shares_table, ["cluster", "pixels", "share"],
                   [[f"c{c}", int(view.counts[c]), float(view.shares[c])] for c in range(k)], percent=False)
        for r in range(k):  # the share column as a percentage
            self.shares_table.item(r, 2).setText(f"{100 * view.shares[r]:.1f} %")
        if view.class_table is not None and view.classes is not None:
            header = ["cluster", *view.classes.names]
            rows = [[f"c{c}"] + [float(v) for v in view.class_table[c]] for c in range(k)]
            fill_table(self.class_table, header, rows, percent=True)
        else:
            self.class_table.clear()
            self.class_table.setRowCount(0)
            self.class_table.setColumnCount(0)
        self.status.setText(f"{k} clusters of {maps.module} (cell of {maps.stride} input pixels)")
