"""Fine-tune widget: the main job. A few painted slices -> the whole volume, with live loss and K curves.

Start runs ``engine.complete`` in a worker: the painting is propagated along the image first (seconds;
that result appears at once as a new Labels layer), then a network is fine-tuned on the painted slices
for the rest of the time budget and pooled with it; the same layer then gets the final labels. With
"fill the volume" off, Start fine-tunes the network alone (the model, no layer). The labels are copied
when the run starts, so painting can go on. A trained model is saved (to the chosen path, or the next
free name beside it: never over an existing file) and joins the session's models (Segment and Clusters
offer it). A weak result says so: status line, warning and layer name (``engine.result_flags``).

The painted-labels picker starts on the Labels layer of the image's grid painted on the fewest slices,
and warns under it when the chosen layer looks like a ground truth (``engine.annotation``).

Two ways to paint, chosen under the picker: whole slices (an axial slice with any label is annotated, 0 on
it is background) or scribbles (0 = not annotated, background painted with label B; strokes in any
plane; the line above counts the marked pixels). Axial slices with a background stroke and a structure's
are grown into whole slices and completed as painted ones; other strokes teach the network alone
(``engine.scribble_completion``). "Refine from last model" is a correction: a short run that goes on from
the session's last model on the painting as it is now (the same path as Start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QFileDialog

from ..config import MemoryConfig, ModelConfig
from ..engine.annotation import AnnotationSummary, ground_truth_warning, parse_background_slices
from ..engine.finetune_settings import (
    REFINE_BUDGET,
    REFINE_STEPS,
    WLDSettings,
    suggest_checkpoint_path,
    train_config_for,
)
from ..engine.volumes import annotated_slices
from ..io.meta import META_KEY
from ._display import TrainingPlot
from ._finetune_form import SCRIBBLES, WHOLE_SLICES, build_finetune_form
from ._finetune_job import FinetuneResult, FirstLabels, finetune_work
from ._finetune_result import FinetuneResultDisplay
from ._jobs import EngineJob, JobWidget
from ._layers import class_names_of, labels_of, volume_of
from ._painting_pick import SparsePaintingDefault
from ._session import SESSION, ModelChoice

__all__ = ["FinetuneWidget", "FinetuneResult", "FirstLabels", "WHOLE_SLICES", "SCRIBBLES", "REFINE_STEPS",
           "REFINE_BUDGET"]


class FinetuneWidget(FinetuneResultDisplay, JobWidget):
    """Image + painted Labels -> fine-tuned checkpoint (and optionally a segmentation).

    The form is built by ``_finetune_form.build_finetune_form``; the result is shown by
    ``_finetune_result.FinetuneResultDisplay``.

    Attributes:
        model_config_override: advanced/test hook: a ``ModelConfig`` used instead of the preset's
            defaults when starting a new model (classes, W-LD and normalisation still come from the
            controls and the data).
        train_config_override: advanced/test hook: a ``TrainConfig`` whose batch size, learning rate
            etc. are used (steps, time budget and device still come from the controls).
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer, "Start")
        self.model_config_override: Any = None
        self.train_config_override: Any = None
        controls = build_finetune_form(self.form, napari_viewer)
        self.image_combo = controls.image_combo
        self.labels_combo = controls.labels_combo
        self.summary_label = controls.summary_label
        self.dense_label = controls.dense_label  # "this looks like a ground truth ..." under the picker
        self.mode_combo = controls.mode_combo
        self.background_spin = controls.background_spin
        self.start_picker = controls.start_picker
        self.steps_spin = controls.steps_spin
        self.budget_spin = controls.budget_spin
        self.k_spin = controls.k_spin
        self.k_low_spin = controls.k_low_spin
        self.k_high_spin = controls.k_high_spin
        self.k_policy_combo = controls.k_policy_combo
        self.size_spin = controls.size_spin
        self.memory_check = controls.memory_check
        self.cluster_bank_check = controls.cluster_bank_check
        self._memory_preset = "lite"  # the preset whose default the box shows; it follows "start from"
        self.background_edit = controls.background_edit
        self.device_combo = controls.device_combo
        self.save_edit = controls.save_edit
        self.fill_check = controls.fill_check
        self.refine_button = controls.refine_button
        self.next_button = controls.next_button  # where to paint next (enabled by a completion)
        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        self.background_spin.valueChanged.connect(lambda *_: self.summary_label.recount())
        controls.add_slice_button.clicked.connect(self.add_current_slice)
        controls.browse_button.clicked.connect(self._browse)
        self.refine_button.clicked.connect(self.refine)
        self.next_button.clicked.connect(self.go_to_suggestion)
        SESSION.changed.connect(self._on_session_models)
        hook = self._on_session_models
        self.destroyed.connect(lambda *_: SESSION.changed.disconnect(hook))
        # (field, its own tooltip): settings of a new model, greyed out when starting from a checkpoint
        self._new_model_fields = [(w, w.toolTip()) for w in (self.size_spin, self.memory_check, self.k_spin,
                                                            self.k_low_spin, self.k_high_spin, self.k_policy_combo,
                                                            self.cluster_bank_check)]
        self.memory_check.toggled.connect(self._sync_cluster_bank)
        self.plot = TrainingPlot()
        self.body.addWidget(self.plot)
        self.run_button.clicked.connect(self.start)

        self.labels_combo.currentIndexChanged.connect(
            lambda *_: self.summary_label.watch(self.labels_combo.layer()))
        self.summary_label.counted.connect(self._warn_if_dense)
        self.image_combo.currentIndexChanged.connect(self._suggest_path)
        self.start_picker.combo.currentIndexChanged.connect(self._on_start_choice)
        self._suggested = ""
        self.summary_label.watch(self.labels_combo.layer())
        self._suggest_path()
        self.result_layer: Any = None
        self._provisional: Any = None  # the propagated layer of the running job, until its final labels
        self._restore: tuple[Any, str] | None = None  # a running correction: its layer's labels and name before
        self._last_completion: tuple[Any, Any] | None = None  # (image layer, Completion): a correction starts from it
        self.last_result: FinetuneResult | None = None
        self._suggestion: tuple[Any, Any] | None = None  # (image layer, Suggestion) of the last completion
        self.painting_default = SparsePaintingDefault(napari_viewer, self.image_combo, self.labels_combo)
        self._on_session_models()

    @property
    def summary(self) -> AnnotationSummary | None:
        """What the painted-slices line shows (None without a labels layer)."""
        return self.summary_label.summary

    @property
    def background_label(self) -> int | None:
        """Scribble mode: the label painted as background; None in whole-slice mode."""
        return self.background_spin.value() if self.mode_combo.currentText() == SCRIBBLES else None

    # ---- controls
    def _on_mode(self, *_: Any) -> None:
        self.background_spin.setVisible(self.background_label is not None)
        self.summary_label.recount()  # the line in the new mode (nothing to recount: cheap), then the warning

    def _on_session_models(self) -> None:
        self.refine_button.setEnabled(SESSION.latest() is not None)

    def _warn_if_dense(self) -> None:
        """The painted line in the current mode, and the ground-truth warning (whole slices only: a stroke
        in a coronal plane touches every axial slice without being a ground truth)."""
        summary, background = self.summary_label.summary, self.background_label
        layer = self.labels_combo.layer()
        if summary is not None and background is not None and layer is not None:  # marked pixels, not slices
            self.summary_label.setText(summary.describe(class_names_of(layer), background=background))
        text = ""
        if summary is not None and background is None:
            text = ground_truth_warning(summary.slices, summary.labels.shape[0])
        self.dense_label.setText(text)
        self.dense_label.setVisible(bool(text))

    def _on_start_choice(self, *_: Any) -> None:
        text = self.start_picker.combo.currentText()
        new_model = text.startswith("new ")
        preset = text.split()[1] if new_model else self._memory_preset
        if preset != self._memory_preset:  # another preset: show its default (paper with the bank, lite without)
            self._memory_preset = preset
            self.memory_check.setChecked(bool(ModelConfig(preset=preset).use_memory))
        for w, tip in self._new_model_fields:
            w.setEnabled(new_model)
            w.setToolTip(tip if new_model else "a checkpoint keeps the architecture and W-LD settings it was "
                         "trained with")
        self._sync_cluster_bank()

    def _sync_cluster_bank(self, *_: Any) -> None:
        """The cluster layout is a way to build the bank: offered for a new model with the bank only."""
        new_model = self.start_picker.combo.currentText().startswith("new ")
        self.cluster_bank_check.setEnabled(new_model and self.memory_check.isChecked())

    def _suggest_path(self, *_: Any) -> None:
        # follow the chosen image only while the path is still our own suggestion (or empty)
        image = self.image_combo.layer()
        current = self.save_edit.text().strip()
        if image is None or current not in ("", self._suggested):
            return
        meta = image.metadata.get(META_KEY)
        self._suggested = str(suggest_checkpoint_path(image.name, getattr(meta, "path", "") or ""))
        self.save_edit.setText(self._suggested)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the fine-tuned model", self.save_edit.text(),
                                              "Checkpoints (*.safetensors)")
        if path:
            self.save_edit.setText(path)

    def add_current_slice(self) -> None:
        """Add the axial slice the viewer shows (in the image's own slice numbers) to the background list."""
        image = self.image_combo.layer()
        if image is None:
            self.fail("choose an image layer first")
            return
        z = int(round(float(image.world_to_data(self.viewer.dims.point)[0])))
        if not 0 <= z < image.data.shape[0]:
            self.fail(f"the viewer shows slice {z}, outside the image's slices")
            return
        try:
            picks = parse_background_slices(self.background_edit.text(), image.data.shape[0])
        except ValueError:  # keep what the user typed; add the slice after it
            picks = []
        text = self.background_edit.text().strip()
        if z not in picks:
            self.background_edit.setText(f"{text}, {z}" if text else str(z))

    def wld_settings(self) -> WLDSettings:
        return WLDSettings(self.k_spin.value(), self.k_low_spin.value(), self.k_high_spin.value(),
                           self.k_policy_combo.currentText())

    # ---- run
    def refine(self) -> EngineJob | None:
        """A correction: a short run from the session's last model on the painting as it is now."""
        if SESSION.latest() is None:
            self.fail("no model in this session yet: press Start first")
            return None
        return self.start(refine=True)

    def start(self, refine: bool = False) -> EngineJob | None:
        """Snapshot the labels and start the run; returns the job (None when the input is not usable).

        Args:
            refine: a correction: from the session's last model, at most ``REFINE_STEPS`` steps and
                ``REFINE_BUDGET`` seconds (the budget box's, when smaller).
        """
        image, labels_layer = self.image_combo.layer(), self.labels_combo.layer()
        if image is None or labels_layer is None:
            self.fail("choose an image layer and the Labels layer painted on it")
            return None
        background_label = self.background_label
        try:
            volume = volume_of(image)
            labels = labels_of(labels_layer, volume.shape)  # a copy: painting goes on meanwhile
            latest = SESSION.latest() if refine else None
            choice = ModelChoice("session", session=latest) if latest is not None else self.start_picker.choice()
            if not labels.any():
                raise ValueError(f"'{labels_layer.name}' holds no painted slice: paint at least one axial slice")
            if background_label is not None:
                self._check_scribbles(background_label)
            if not self.save_edit.text().strip():
                raise ValueError("choose where to save the fine-tuned model")
            wld = self.wld_settings()
            if choice.kind == "preset":
                if self.size_spin.value() % 32:
                    raise ValueError(f"input size {self.size_spin.value()} is not a multiple of 32")
                base = self.model_config_override
                wld.check(base.memory.slots if base is not None else MemoryConfig().slots)
            names = class_names_of(labels_layer)
            background = parse_background_slices(self.background_edit.text(), volume.shape[0])
        except ValueError as err:
            self.fail(str(err))
            return None
        requested = Path(self.save_edit.text().strip()).expanduser()
        steps, budget = self.steps_spin.value(), self.budget_spin.value()
        if refine:
            steps = min(steps, REFINE_STEPS) if steps else REFINE_STEPS
            budget = min(budget, REFINE_BUDGET) if budget else REFINE_BUDGET
        train = train_config_for(steps, budget, self.device_combo.device(), self.train_config_override)
        fill = self.fill_check.isChecked()
        # a correction re-propagates only the stretches it touches and keeps the intensity strength
        # (napari hands a plugin a new proxy of a layer at every lookup: compare layers with ==, never is)
        last = self._last_completion
        previous = last[1] if refine and last is not None and last[0] == image else None
        work = finetune_work(volume, labels, choice, wld, names, train, requested, fill,
                             base=self.model_config_override, img_size=self.size_spin.value(),
                             background=background, use_memory=self.memory_check.isChecked(),
                             cluster_bank=self.memory_check.isChecked() and self.cluster_bank_check.isChecked(),
                             background_label=background_label, previous=previous)
        slots = (self.model_config_override.memory.slots if self.model_config_override is not None
                 else MemoryConfig().slots)
        self.plot.reset(train.steps, slots)
        n_slices = len(annotated_slices(labels, background))
        status = (f"filling the volume from {n_slices} slices: propagating the painting..." if fill
                  else f"fine-tuning on {n_slices} slices...")
        if background_label is not None:
            status = (f"completing the scribbles of {n_slices} slices: growing them into whole slices..." if fill
                      else f"training the network on the scribbles of {n_slices} slices...")
        if refine:
            status = f"refining {choice.describe()} on {n_slices} slices ({train.step_cap} steps at most)..."
        # a correction shows its labels in the last result layer itself, first propagated, then final (no
        # layer added and removed: each is napari's own quarter second on the viewer's thread); a cancelled
        # or failed one puts that layer's labels and name back as they were
        self._provisional, self._restore = None, None
        if refine and self.result_layer in self.viewer.layers:
            self._provisional = self.result_layer
            self._restore = (self.result_layer.data, self.result_layer.name)
        self.status.setToolTip("")  # the last run's details
        job = self.start_job(work, lambda res: self._apply(image, res), "Fine-tune", status)
        if job is not None:
            job.reported.connect(lambda item: self._on_report(job, image, item, n_slices))
            job.ended.connect(self._on_job_ended)
        return job

    def _check_scribbles(self, background: int) -> None:
        """Refuse scribbles without a background mark or without a structure, from the cached summary
        (the engine checks again in the worker; a whole-volume pass has no place on the viewer's thread)."""
        summary = self.summary_label.summary
        if summary is None:
            return
        if background not in summary.classes:
            raise ValueError(f"the scribbles hold no background mark (label {background}): paint a few strokes of "
                             f"background with label {background}, or choose whole slices")
        if summary.classes == [background]:
            raise ValueError(f"the scribbles mark only background (label {background}): paint at least one "
                             "structure too")

    def cancel(self) -> None:
        """Cancel the run (``JobWidget.cancel``) and take away the propagated layer it showed."""
        super().cancel()
        self._drop_provisional()

    def _on_job_ended(self, outcome: Any) -> None:
        self.plot.finish()
        if outcome.status != "ok":  # a cancelled or failed run leaves no half result behind
            self._drop_provisional()
