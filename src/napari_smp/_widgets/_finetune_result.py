"""The Fine-tune widget's result display: the run's reports and result on the viewer's thread.

``FinetuneResultDisplay`` is mixed into ``finetune.FinetuneWidget``: the propagated labels shown while the
network trains, the final labels in the same layer, the session's new model, the status line and
notifications, and the "slice to paint next" button.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtWidgets import QPushButton

from ..engine.result_flags import flagged_name, result_flag
from ._controls import LayerCombo, tell_if_renamed
from ._display import TrainingPlot
from ._finetune_job import FinetuneResult, FirstLabels
from ._jobs import EngineJob, WrappingLabel
from ._layers import derived_layer_kwargs, unique_name
from ._session import SESSION

__all__ = ["FinetuneResultDisplay"]


class FinetuneResultDisplay:
    """The result display of ``FinetuneWidget`` (a mixin: it keeps no state of its own).

    The widget provides the attributes annotated below (``JobWidget`` and ``FinetuneWidget.__init__``).
    """

    viewer: Any
    status: WrappingLabel
    plot: TrainingPlot
    labels_combo: LayerCombo
    next_button: QPushButton
    result_layer: Any
    last_result: FinetuneResult | None
    _provisional: Any  # the propagated layer of the running job, until its final labels
    _restore: tuple[Any, str] | None  # a running correction: its layer's labels and name before
    _last_completion: tuple[Any, Any] | None  # (image layer, Completion): a correction starts from it
    _suggestion: tuple[Any, Any] | None  # (image layer, Suggestion) of the last completion

    def _on_report(self, job: EngineJob, image: Any, item: Any, n_slices: int) -> None:
        """A step report for the plot, or the propagated labels (main thread, queued from the worker)."""
        if job.detached:  # cancelled after the worker sent it: nothing reaches the viewer
            return
        if not isinstance(item, FirstLabels):
            self.plot.add(item)
            return
        self._provisional = self._put_result(image, item.labels, item.classes,
                                             f"{image.name} completion (propagated; training...)")
        self.status.setText(f"propagation done: a first result is in '{self._provisional.name}'; "
                            f"fine-tuning the network on {n_slices} slices...")

    def _put_result(self, image: Any, labels: np.ndarray, classes: dict[int, str], name: str) -> Any:
        """Show ``labels`` in this run's result layer (added the first time, or again if the user removed it)."""
        data = labels[0] if image.ndim == 2 else labels
        layer = self._provisional
        if layer is None or layer not in self.viewer.layers:
            active = self.viewer.layers.selection.active  # napari selects a new layer; the user may be painting
            layer = self.viewer.add_labels(data, name=unique_name([ly.name for ly in self.viewer.layers], name),
                                           **derived_layer_kwargs(image, class_names=classes))
            if active is not None:
                self.viewer.layers.selection.active = active
            return layer
        layer.data = data
        layer.name = unique_name([ly.name for ly in self.viewer.layers if ly != layer], name)  # proxies: !=
        return layer

    def _drop_provisional(self) -> None:
        layer, self._provisional = self._provisional, None
        restore, self._restore = self._restore, None
        if layer is None or layer not in self.viewer.layers:
            return
        if restore is None:
            self.viewer.layers.remove(layer)
        else:  # a correction's layer was the user's result before: as it was
            layer.data, layer.name = restore

    def _show_suggestion(self, image: Any, suggestion: Any, classes: dict[int, str]) -> None:
        self._suggestion = (image, suggestion) if suggestion is not None else None
        self.next_button.setEnabled(suggestion is not None)
        text = suggestion.describe(classes) if suggestion is not None else "every slice is painted"
        self.next_button.setToolTip(text)

    def go_to_suggestion(self) -> None:
        """Show the suggested slice (axis 0 of the image it was computed on) and select the painting."""
        if self._suggestion is None:
            return
        image, suggestion = self._suggestion
        world = float(image.data_to_world([suggestion.slice, 0, 0])[0])  # the layer's scale and translate
        self.viewer.dims.set_point(0, world)
        painting = self.labels_combo.layer()
        if painting is not None and painting in self.viewer.layers:
            self.viewer.layers.selection.active = painting  # ready to paint there

    def _apply(self, image: Any, res: FinetuneResult) -> None:
        """The run's result on the main thread: the layer, the session's model, the status and notifications.

        The status reads, most important first: the flag and the notes (why the network was left out ...),
        what was filled, then the network's steps, file and answer; a filled volume keeps the answer for the
        tooltip, so the form above is not squeezed.
        """
        from napari.utils.notifications import show_info, show_warning

        tr, done = res.train, res.completion
        self.last_result = res
        notes = list(done.notes) if done is not None else list(tr.notes)
        flag = result_flag(tr.answers if tr is not None else None, done.sources if done is not None else None)
        lines: list[str] = []
        answer = f"the model {tr.answer()}" if tr is not None and tr.answer() else ""
        if done is not None:
            depth, painted = done.labels.shape[0], len(done.propagation.painted)
            lines.append(f"{done.sources}: {depth - painted} slices filled from {painted} painted "
                         f"in {sum(done.seconds.values()):.0f} s")
            self._restore = None  # a correction that ended well keeps its labels
            self.result_layer = self._put_result(image, done.labels, res.classes or {},
                                                 flagged_name(f"{image.name} completion", flag))
            self._provisional = None  # the layer is the user's now
            self._show_suggestion(image, done.suggestion, res.classes or {})
            self._last_completion = (image, done)
        if tr is not None:
            SESSION.add(res.path, tr.model, tr.config)
            last = tr.reports[-1] if tr.reports else None
            why = {"steps": "all steps done", "time": "time budget used"}.get(tr.stopped, tr.stopped)
            text = f"network: {len(tr.reports)} steps ({why})"
            if last is not None:
                text += f", {last.summary()}"
            lines.append(text + f"; saved as {res.path.name}")
            if answer and done is None:
                lines.append(answer)
            tell_if_renamed(res.requested, res.path)
        if flag:
            what = f"'{self.result_layer.name}'" if done is not None else "the fine-tuned model"
            show_warning(f"Fine-tune: {what}: {flag}" + "".join(f"; {n}" for n in notes))
            lines.insert(0, "\u26a0 " + "; ".join([flag, *notes]))
        else:
            lines.extend(notes)
            if notes:
                show_info("Fine-tune: " + "; ".join(notes))
        self.status.setText("\n".join(lines))
        self.status.setToolTip("\n".join(lines + ([answer] if answer and done is not None else [])))
