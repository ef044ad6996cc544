"""Pre-train the lite encoder on unlabelled image layers or files (SuperCL or MACL), with a loss plot.

The engine call runs in a napari worker thread; it reports every step through a plain callback and
polls a cancel flag (engine/pretrain.py). Reports are queued and drawn by a timer at most a few times
a second, so the viewer stays responsive however fast the steps come. The checkpoint is written from
the worker thread too, atomically, and is accepted by the Fine-tune widget and ``finetune --init``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

__all__ = ["PretrainWidget", "volume_layers", "split_paths"]


def volume_layers(layers: Sequence[Any]) -> list[Any]:
    """The image layers that hold a single-channel 3D volume (Z, Y, X)."""
    return [
        layer
        for layer in layers
        if type(layer).__name__ == "Image"
        and getattr(layer, "ndim", 0) == 3
        and not getattr(layer, "rgb", False)
    ]


def split_paths(text: str) -> list[Path]:
    """Paths typed or browsed into the files box, separated by ``;``."""
    return [Path(p.strip()).expanduser() for p in text.split(";") if p.strip()]


class PretrainWidget(QWidget):
    """Dock widget: choose volumes, method and budget; Start / Cancel; watch the loss fall.

    ``config`` (a :class:`~napari_smp.config.ModelConfig`, default lite at 128) may be replaced before
    Start, e.g. by tests or by a fine-tune widget that wants a matching architecture.
    """

    def __init__(self, napari_viewer: Any) -> None:
        # napari injects the viewer only into a parameter named ``napari_viewer`` (or one annotated
        # ``napari.viewer.Viewer``); any other name fails when the widget is opened from the Plugins menu
        super().__init__()
        from ..config import ModelConfig

        viewer = self.viewer = napari_viewer
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
        self.budget = QDoubleSpinBox()
        self.budget.setRange(5.0, 86_400.0)
        self.budget.setValue(180.0)
        self.budget.setSuffix(" s")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(500)
        self.out = QLineEdit(str(Path.home() / "napari-smp-pretrained.safetensors"))
        self.start_button, self.cancel_button = QPushButton("Start"), QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.plot = _LossPlot()

        form = QFormLayout()
        form.addRow("Image layers", self.layer_list)
        files_row = QHBoxLayout()
        files_row.addWidget(self.files)
        files_row.addWidget(browse)
        form.addRow("Files", files_row)
        form.addRow("Method", self.method)
        form.addRow("Time budget", self.budget)
        form.addRow("Max steps", self.steps)
        form.addRow("Save to", self.out)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        body = QVBoxLayout(self)
        body.addLayout(form)
        body.addLayout(buttons)
        body.addWidget(self.status)
        body.addWidget(self.plot)

        self.worker: Any = None
        self._cancel = threading.Event()
        self._reports: list[Any] = []
        self._lock = threading.Lock()
        self._timer = QTimer(self)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self._drain)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._cancel.set)
        viewer.layers.events.inserted.connect(self.refresh_layers)
        viewer.layers.events.removed.connect(self.refresh_layers)
        self.refresh_layers()
        cancel = self._cancel
        self.destroyed.connect(lambda *_: cancel.set())  # a closing viewer stops the run

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

    def start(self) -> None:
        """Read the form and start pre-training in a worker thread (ignored while one runs)."""
        if self.worker is not None:
            return
        arrays = [np.asarray(layer.data) for layer in self.selected_layers()]
        files, out = split_paths(self.files.text()), Path(self.out.text()).expanduser()
        if not arrays and not files:
            self._say("tick at least one 3D image layer or add volume files")
            return
        if not out.parent.is_dir():
            self._say(f"the folder of {out} does not exist")
            return
        from napari.qt.threading import create_worker

        self._cancel.clear()
        self._reports.clear()
        self.plot.reset()
        job = _Job(
            arrays,
            files,
            out,
            self.config,
            self.method.currentText(),
            self.steps.value(),
            self.budget.value(),
            self._on_report,
            self._cancel.is_set,
        )
        self.worker = create_worker(job.run, _start_thread=False)
        self.worker.returned.connect(self._on_done)
        self.worker.errored.connect(lambda err: self._finish(f"failed: {str(err).splitlines()[0]}"))
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("reading volumes and computing superpixels...")
        self._timer.start()
        self.worker.start()

    def _on_report(self, report: Any) -> None:  # worker thread
        with self._lock:
            self._reports.append(report)

    def _drain(self) -> None:
        with self._lock:
            new, self._reports[:] = list(self._reports), []
        if new:
            self.plot.add([r.step for r in new], [r.loss for r in new])
            last = new[-1]
            self.status.setText(f"step {last.step}: loss {last.loss:.3f} ({last.elapsed:.0f} s)")

    def _on_done(self, message: str) -> None:
        self._finish(message)

    def _finish(self, message: str) -> None:
        self._drain()
        self._timer.stop()
        self.worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status.setText(message)

    def _say(self, message: str) -> None:
        from napari.utils.notifications import show_error

        self.status.setText(message)
        show_error(message)


class _Job:
    """The worker's work: read files, pre-train, save; returns one status sentence."""

    def __init__(self, arrays, files, out, config, method, steps, budget, callback, cancel) -> None:
        self.arrays, self.files, self.out, self.config = arrays, files, out, config
        self.method, self.steps, self.budget = method, steps, budget
        self.callback, self.cancel = callback, cancel

    def run(self) -> str:
        from dataclasses import replace

        from .._cpu import viewer_threads
        from ..config import PretrainConfig
        from ..engine.pretraining import pretrain, save_pretrained_result
        from ..engine.volumes import guess_norm
        from ..io import read_volume

        try:
            volumes = self.arrays + [read_volume(p)[0] for p in self.files]
            config = replace(self.config, norm=guess_norm(volumes[0]))
            settings = PretrainConfig(
                method=self.method, steps=self.steps, time_budget=self.budget, threads=viewer_threads()
            )
            result = pretrain(volumes, config, settings, callback=self.callback, cancel=self.cancel)
        except (ValueError, OSError) as err:  # user mistakes: one sentence, no traceback
            return f"failed: {str(err).splitlines()[0]}"
        if result.stopped == "cancelled" or not result.reports:
            return "cancelled; nothing was saved"
        save_pretrained_result(self.out, result)
        first, last = result.reports[0].loss, result.reports[-1].loss
        return (
            f"saved {self.out.name}: {len(result.reports)} steps on {result.slices} slices "
            f"(stopped: {result.stopped}), loss {first:.3f} -> {last:.3f}"
        )


class _LossPlot(QWidget):
    """A small matplotlib loss-against-step plot."""

    def __init__(self) -> None:
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.0, 2.2), dpi=80, layout="constrained")
        fig.patch.set_alpha(0.0)
        self.canvas = FigureCanvasQTAgg(fig)
        self.ax = fig.add_subplot()
        self.ax.set_xlabel("step", fontsize=8)
        self.ax.set_ylabel("contrastive loss", fontsize=8)
        self.ax.tick_params(labelsize=8)
        (self.line,) = self.ax.plot([], [], lw=1.2)
        self.steps: list[int] = []
        self.losses: list[float] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.setMinimumHeight(170)

    def reset(self) -> None:
        self.steps, self.losses = [], []
        self._redraw()

    def add(self, steps: list[int], losses: list[float]) -> None:
        self.steps += steps
        self.losses += losses
        self._redraw()

    def _redraw(self) -> None:
        self.line.set_data(self.steps, self.losses)
        self.ax.relim()
        self.ax.autoscale_view()
        self.canvas.draw_idle()
