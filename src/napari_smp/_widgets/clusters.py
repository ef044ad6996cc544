"""Clusters widget: what the memory bank of one DMW-LA module has learnt, on the slices you look at.

For the chosen module and slices it adds (all on the image's grid, computed in a worker by
``engine.inference.cluster_report``: similarities brought to the image grid, the air left out):

- ``similarity <module>``: one hidden Image layer, (clusters, slices, Y, X), the cosine similarity of
  every pixel's feature to each cluster's prototype; the leading slider picks the cluster;
- ``clusters <module>``: a Labels layer, value ``c + 1`` for cluster ``c`` inside the body, 0 (transparent)
  in the air around it;
- ``regions <module>``: a Shapes layer with one rectangle per cluster and slice around the cluster's
  main connected region inside the body, in the cluster's colour of the layer above;

and fills two tables: each cluster's class, pixels, share and purity (with a labels layer) and the
share of each cluster's pixels in each class. *Save figure* writes the supplement-style figure
(PNG, SVG) and ``clusters.csv`` of the last result, as ``napari-smp clusters`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QLabel, QPushButton, QSpinBox

from ._controls import NONE_TEXT, DeviceCombo, LayerCombo, field_row
from ._display import fill_table, make_table
from ._jobs import EngineJob, JobContext, JobWidget, section
from ._layers import append_in_turns, class_names_of, derived_layer_kwargs, labels_of, volume_of
from ._session import ModelChoice, ModelPicker

if TYPE_CHECKING:  # the engine loads torch: import it in the worker
    from ..engine.inference.cluster_report import ClusterReport

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
        self.figure_button = QPushButton("Save figure...")
        self.figure_button.setEnabled(False)
        self.figure_button.clicked.connect(self._ask_figure_folder)
        self.form.addRow("image", self.image_combo)
        self.form.addRow("model", self.model_picker)
        self.form.addRow("device", self.device_combo)
        self.form.addRow("DMW-LA module", mod_row)
        self.form.addRow("slices", self.slices_combo)
        self.form.addRow("", range_row)
        self.form.addRow("compare with", self.labels_combo)
        self.shares_table = make_table(110)
        self.class_table = make_table(110)
        self.body.addWidget(section("each cluster: its class, the body pixels it claims, purity"))
        self.body.addWidget(self.shares_table)
        self.body.addWidget(section("cluster x class: share of each cluster's pixels in each class"))
        self.body.addWidget(self.class_table)
        self.body.addWidget(self.figure_button)
        self.slices_combo.currentIndexChanged.connect(lambda *_: range_row.setEnabled(self._use_range()))
        range_row.setEnabled(False)
        self.model_picker.combo.currentIndexChanged.connect(self._forget_model)
        self.model_picker.path_edit.editingFinished.connect(self._forget_model)
        self.run_button.clicked.connect(self.run)
        self._predictor: Any = None
        self._predictor_key: tuple | None = None
        self.layers: list[Any] = []
        self.report: ClusterReport | None = None
        self._report_volume: Any = None

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

        geo = derived_layer_kwargs(image, z_offset=first)
        shapes_geo = {**derived_layer_kwargs(image), "edge_width": max(1.0, image.data.shape[-1] / 200)}

        def work(ctx: JobContext) -> tuple[Any, ClusterReport, list[Any]]:
            from ..engine.inference.cluster_report import cluster_report, default_module

            predictor = load()
            # no bank: one sentence; the model refuses a module it lacks, in one sentence
            mod = module or default_module(predictor.memory_modules())
            report = cluster_report(predictor, volume, mod, range(first, last + 1), labels, None, names,
                                    progress=ctx.progress, cancel=ctx.cancelled)
            return predictor, report, _make_layers(report, geo, shapes_geo)

        def done(result: tuple[Any, ClusterReport, list[Any]]) -> None:
            predictor, report, layers = result
            self._remember(predictor, key)
            self.module_combo.setCurrentText(report.module)
            self.report, self._report_volume = report, volume
            self._fill_tables(report)
            # napari's own cost of adding a layer is the viewer's longest wait: one layer per event-loop turn
            append_in_turns(self.viewer, layers, self._layers_added)

        what = f"slice {first}" if first == last else f"slices {first}-{last}"
        return self.start_job(work, done, "Clusters", f"clusters of {module or 'the finest decoder bank'} on {what}...")

    def _layers_added(self, layers: list[Any]) -> None:
        self.layers = layers

    def _fill_tables(self, rep: ClusterReport) -> None:
        """The two tables, the status line and the figure button of a finished report."""
        k = rep.k
        counts = rep.counts()
        total = max(int(counts.sum()), 1)
        pur = rep.purity.get("all")
        rows = [[f"c{c}", rep.class_name(c), int(counts[c]), f"{100 * counts[c] / total:.1f} %",
                 "-" if pur is None or not np.isfinite(pur.purity[c]) else f"{100 * pur.purity[c]:.1f} %"]
                for c in range(k)]
        fill_table(self.shares_table, ["cluster", "class", "pixels", "share", "purity"], rows)
        if pur is not None and rep.classes is not None:
            header = ["cluster", *rep.classes.names]
            table = pur.shares
            fill_table(self.class_table, header,
                       [[f"c{c}"] + [float(v) for v in table[c]] for c in range(k)], percent=True)
        else:
            self.class_table.clear()
            self.class_table.setRowCount(0)
            self.class_table.setColumnCount(0)
        self.figure_button.setEnabled(True)
        mean = f"; mean purity {rep.mean_purity():.2f}" if pur is not None else ""
        self.status.setText(f"{k} clusters of {rep.module} (cell of {rep.stride:g} input pixels){mean}")

    def _ask_figure_folder(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Folder for clusters.png, clusters.svg, clusters.csv")
        if folder:
            self.save_figure(folder)

    def save_figure(self, folder: str) -> EngineJob | None:
        """Write the last result's figure (PNG, SVG) and ``clusters.csv`` into ``folder``, in a worker.

        Files of those names already there are not overwritten: the job fails in one sentence.
        """
        from pathlib import Path

        rep, volume = self.report, self._report_volume
        if rep is None:
            self.fail("show clusters first")
            return None
        out = Path(folder)
        names = ("clusters.png", "clusters.svg", "clusters.csv")
        taken = [n for n in names if (out / n).exists()]
        if not out.is_dir() or taken:
            self.fail(f"{out / taken[0]} exists; choose another folder" if taken else f"{out} is not a folder")
            return None

        def work(ctx: JobContext) -> list[Any]:
            from ..engine.inference.cluster_figure import save_cluster_figure, write_cluster_csv

            written = save_cluster_figure(rep, volume, out / "clusters")
            return [*written, write_cluster_csv(rep, out / "clusters.csv")]

        def done(paths: list[Any]) -> None:
            self.status.setText(f"wrote {', '.join(p.name for p in paths)} in {out}")

        return self.start_job(work, done, "Save figure", f"drawing the clusters of {rep.module}...")


def _make_layers(rep: ClusterReport, geo: dict, shapes_geo: dict) -> list[Any]:
    """The result's napari layers, built in the worker (Qt-free objects; tens of MB of data on a CT slab):

    - the float32 similarity stack (K, S, Y, X), hidden, a slider over the clusters;
    - the cluster map, ``c + 1`` inside the body and 0 (transparent) in the air;
    - one box per cluster and slice around its main region, in the cluster's colour.
    """
    import pandas as pd
    from napari.layers import Image, Labels, Shapes

    sim = rep.similarity.astype(np.float32)
    dtype = np.uint8 if rep.k < 255 else np.uint16
    shown = np.where(rep.body, rep.assignment + 1, 0).astype(dtype)
    layers = [Image(sim, name=f"similarity {rep.module}", visible=False, colormap="magma",
                    contrast_limits=(float(sim.min()), float(sim.max()) + 1e-6), **_leading_axis(geo, "cluster")),
              Labels(shown, name=f"clusters {rep.module}", opacity=0.6,
                     **{**geo, "features": pd.DataFrame({"index": np.arange(rep.k + 1),
                                                         "cluster": ["-"] + [str(c) for c in range(rep.k)]})})]
    if rep.boxes:
        # each box in its cluster's colour tells which cluster it frames; text labels would too, but vispy drew
        # the nine of one slice in 0.7 s on the viewer's thread (a software-rendered canvas)
        colours = [layers[1].get_color(b.cluster + 1) for b in rep.boxes]
        layers.append(Shapes(
            [b.corners() for b in rep.boxes], shape_type="rectangle", edge_color=colours, face_color="transparent",
            name=f"regions {rep.module}", features={"cluster": [b.cluster for b in rep.boxes]}, **shapes_geo))
    return layers


def _leading_axis(geo: dict, label: str) -> dict:
    """``derived_layer_kwargs`` of a (S, Y, X) layer for a (K, S, Y, X) stack: an index axis in front."""
    n = len(geo["scale"]) + 1
    rotate, affine = np.eye(n), np.eye(n + 1)
    rotate[1:, 1:] = np.asarray(geo["rotate"])
    affine[1:, 1:] = np.asarray(geo["affine"])
    shear = np.asarray(geo["shear"])
    if shear.ndim == 2:
        full = np.eye(n)
        full[1:, 1:] = shear
        shear = full
    else:  # upper-triangular entries, row by row: the new first row has none
        shear = np.concatenate([np.zeros(n - 1), shear])
    return {**geo, "scale": (1.0, *geo["scale"]), "translate": (0.0, *geo["translate"]), "rotate": rotate,
            "shear": shear, "affine": affine, "units": ("pixel", *geo["units"]),
            "axis_labels": (label, *geo["axis_labels"])}
