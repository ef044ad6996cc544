"""The shared shell of the four widgets: a form, Run / Cancel buttons, a status line, one job at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ._jobs import EngineJob, JobContext, Outcome

__all__ = ["JobWidget", "section"]


class _JobSlot:
    """Holds the running job apart from the widget, so a dying widget can still stop it."""

    def __init__(self) -> None:
        self.job: EngineJob | None = None

    def stop(self, *_: Any) -> None:
        if self.job is not None and self.job.running:
            self.job.stop()


class JobWidget(QWidget):
    """A dock widget that runs one engine job at a time.

    Subclasses fill ``self.form`` and call ``start_job``. Closing the viewer (which destroys the dock
    and this widget) cancels the job and waits for its thread, so nothing runs on after the window.
    """

    def __init__(self, viewer: Any, run_text: str) -> None:
        super().__init__()
        self.viewer = viewer
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.run_button = QPushButton(run_text)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.body = QVBoxLayout(self)
        self.body.addLayout(self.form)
        self.body.addLayout(buttons)
        self.body.addWidget(self.status)
        self.cancel_button.clicked.connect(self.cancel)
        self._slot = slot = _JobSlot()
        # a closure, not a bound method: it must outlive this widget's Python wrapper
        self.destroyed.connect(lambda *_: slot.stop())

    @property
    def job(self) -> EngineJob | None:
        return self._slot.job

    def busy(self) -> bool:
        return self.job is not None and self.job.running and not self.job.detached

    def start_job(self, work: Callable[[JobContext], Any], on_result: Callable[[Any], None], desc: str,
                  status: str) -> EngineJob | None:
        """Run ``work`` in a worker; ``on_result`` gets its value on the main thread."""
        if self.busy():
            return None
        job = EngineJob(work, on_result, desc)
        job.ended.connect(self._on_ended)
        self._slot.job = job
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(status)
        return job.start()

    def cancel(self) -> None:
        """Cancel at once from the user's view: the result is dropped and the widget is free again.

        The engine stops at its next check (between two slice batches or optimiser steps), so the
        thread itself ends within one step; nothing it made after this point reaches the viewer.
        """
        from napari.utils.notifications import show_info

        job = self.job
        if job is None or not job.running or job.detached:
            return
        job.stop(timeout=0)
        self._on_ended(Outcome("cancelled"))
        show_info(f"{job.desc}: cancelled")

    def _on_ended(self, outcome: Outcome) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if outcome.status == "cancelled":
            self.status.setText("cancelled")
        elif outcome.status == "error":
            self.status.setText(f"failed: {outcome.message}")

    def fail(self, message: str) -> None:
        """Show a user mistake found before any work started (one sentence)."""
        from napari.utils.notifications import show_error

        self.status.setText(message)
        show_error(message)


def section(title: str) -> QLabel:
    label = QLabel(f"<b>{title}</b>")
    return label
