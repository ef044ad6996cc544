"""Pre-train widget: the lite encoder on unlabelled image layers or files (SuperCL or MACL), with a loss plot.

The engine call runs in the widgets' shared job shell (``_jobs``): it reports every step, the loss plot
queues the reports and draws them a few times a second, and Cancel stops at the next step. The
checkpoint is written from the worker thread, atomically, to the chosen path or the next free name
beside it (never over an existing file); the Fine-tune widget and ``finetune --init`` accept it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
)

from .._cpu import viewer_threads
from ..config import ModelConfig, PretrainConfig
from ._controls import field_row, spin_box, tell_if_renamed
from ._display import TrainingPlot
from ._jobs import EngineJob, JobContext, JobWidget, Outcome
from ._layers import volume_layers, volume_of

__all__ = ["PretrainWidget", "split_paths"]


def split_paths(text: str) -> list[Path]:
    """Paths typed or browsed into the files box, separated by ``;``."""
    return [Path(p.strip()).expanduser() for p in text.split(";") if p.strip()]


class PretrainWidget(JobWidget):
    """Dock widget: choose volumes, method and budget; Start / Cancel; watch the loss fall.

    ``config`` (a :class:`~napari_smp.config.ModelConfig`, default lite at 128) may be replaced before
    Start, e.g. by tests or by a fine-tune widget that wants a matching architecture.
    """

    def __init__(self, napari_viewer: Any) -> None:
        # napari injects the viewer only into a parameter named ``napari_viewer`` (or one annotated
        # ``napari.viewer.Viewer``); any other name fails when the widget is opened from the Plugins menu
        super().__init__(napari_viewer, "Start")
        self.config = ModelConfig()
        self.layer_list = QListWidget()
        self.layer_list.setMaximumHeight(110)
        self.files = QLineEdit()
        self.files.setPlaceholderText("more volumes: file paths separated by ;")
        browse = QPushButton("Add files...")
        browse.clicked.connect(self._browse_inputs)
        self.method = QComboBox()
        self.method.addItems(["supercl", "macl"])
        self.method.setToolTip("supercl: encoder, superpixel pairs; macl: encoder + first decoder stages")
        self.budget = spin_box(QDoubleSpinBox(), 5.0, 86_400.0, 180.0, suffix=" s")
        self.steps = spin_box(QSpinBox(), 1, 1_000_000, 500)
        self.out = QLineEdit(str(Path.home() / "napari-smp-pretrained.safetensors"))
        self.plot = TrainingPlot(interval_ms=300, loss_only=True, loss_label="contrastive loss")

        f = self.form
        f.addRow("Image layers", self.layer_list)
        f.addRow("Files", field_row(self.files, browse))
        f.addRow("Method", self.method)
        f.addRow("Time budget", self.budget)
        f.addRow("Max steps", self.steps)
        f.addRow("Save to", self.out)
        self.body.addWidget(self.plot)
        self.run_button.clicked.connect(self.start)
        events, refresh = napari_viewer.layers.events, self.refresh_layers
        events.inserted.connect(refresh)
        events.removed.connect(refresh)
        # napari does not know when this Qt object dies: disconnect without touching it
        self.destroyed.connect(lambda *_: (events.inserted.disconnect(refresh), events.removed.disconnect(refresh)))
        self.refresh_layers()

    def refresh_layers(self, *_: Any) -> None:
        """List the 3D image layers, keeping the ticks of those already listed (all ticked by default)."""
        ticked = {
            self.layer_list.item(i).text(): self.layer_list.item(i).checkState()
            for i in range(self.layer_list.count())
        }
        self.layer_list.clear()
        for layer in volume_layers(self.viewer.layers):
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(ticked.get(layer.name, Qt.CheckState.Checked))
            self.layer_list.addItem(item)

    def selected_layers(self) -> list[Any]:
        names = {
            self.layer_list.item(i).text()
            for i in range(self.layer_list.count())
            if self.layer_list.item(i).checkState() == Qt.CheckState.Checked
        }
        return [layer for layer in volume_layers(self.viewer.layers) if layer.name in names]

    def _browse_inputs(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Unlabelled volumes", str(Path.home()))
        if paths:
            self.files.setText("; ".join([self.files.text()] * bool(self.files.text().strip()) + paths))

    # ---- run
    def start(self) -> EngineJob | None:
        """Read the form and start pre-training; returns the job (None when the input is not usable)."""
        if self.busy():
            return None
        volumes = [volume_of(layer) for layer in self.selected_layers()]
        files, out = split_paths(self.files.text()), Path(self.out.text()).expanduser()
        if not volumes and not files:
            self.fail("tick at least one 3D image layer or add volume files")
            return None
        if not out.parent.is_dir():
            self.fail(f"the folder of {out} does not exist")
            return None
        settings = PretrainConfig(method=self.method.currentText(), steps=self.steps.value(),
                                  time_budget=self.budget.value(), threads=viewer_threads())
        self.plot.reset(settings.steps)
        job = self.start_job(self._work(volumes, files, out, settings), lambda res: self._apply(res, out),
                             "Pre-train", "reading volumes and computing superpixels...")
        if job is not None:
            job.reported.connect(self.plot.add)
            job.reported.connect(self._show_step)
            job.ended.connect(lambda *_: self.plot.finish())
        return job

    def _work(self, volumes: list[np.ndarray], files: list[Path], out: Path, settings: PretrainConfig) -> Any:
        config = self.config

        def work(ctx: JobContext) -> tuple[Any, Path]:
            from dataclasses import replace

            from ..engine.checkpoint import free_checkpoint_path
            from ..engine.errors import Cancelled
            from ..engine.pretraining import pretrain, save_pretrained_result
            from ..engine.volumes import guess_norm
            from ..io import read_volume

            arrays = volumes + [read_volume(p)[0] for p in files]
            result = pretrain(arrays, replace(config, norm=guess_norm(arrays[0])), settings, callback=ctx.report,
                              cancel=ctx.cancelled)
            if result.stopped == "cancelled" or not result.reports or ctx.cancelled():
                raise Cancelled("pre-training cancelled")
            return result, save_pretrained_result(free_checkpoint_path(out), result)

        return work

    def _show_step(self, report: Any) -> None:
        self.status.setText(f"step {report.step}: loss {report.loss:.3f} ({report.elapsed:.0f} s)")

    def _apply(self, res: tuple[Any, Path], requested: Path) -> None:
        result, path = res
        tell_if_renamed(requested, path)
        first, last = result.reports[0].loss, result.reports[-1].loss
        self.status.setText(f"saved {path.name}: {len(result.reports)} steps on {result.slices} slices "
                            f"(stopped: {result.stopped}), loss {first:.3f} -> {last:.3f}")

    def _on_ended(self, outcome: Outcome) -> None:
        super()._on_ended(outcome)
        if outcome.status == "cancelled":
            self.status.setText("cancelled; nothing was saved")
