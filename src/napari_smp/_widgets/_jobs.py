"""The widgets' shared job shell: one engine call in a napari worker thread, and the dock widget running it.

The engine reports through plain callables and polls a cancel callable (engine/inference,
engine/training, engine/pretraining). ``EngineJob`` gives it both, runs it in a napari
``FunctionWorker`` and relays progress and reports to the main thread through Qt signals (queued across
threads), where they drive an activity-bar progress bar and the widget's plots. User mistakes come back
as one sentence in a napari notification; a cancel is reported as information, not as an error.
``JobWidget`` is the form, Run / Cancel buttons and status line every widget shares, one job at a time.

Every plugin thread that may import torch first goes through :func:`import_torch`: two first imports of
torch running at the same time can leave one thread with a half-initialised torch ("operator
debug_mode_ops::annotate does not exist", seen when a fine-tune started within a second of opening the
widget, while the device list was importing torch in its own thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = ["EngineJob", "JobContext", "JobWidget", "Outcome", "TORCH_IMPORT_LOCK", "WrappingLabel", "import_torch",
           "section"]

TORCH_IMPORT_LOCK = threading.Lock()


def import_torch() -> ModuleType:
    """Import torch, or wait for the thread importing it; returns the module. Never call it on the
    viewer's thread before torch is loaded: the first import takes about 1.5 s."""
    with TORCH_IMPORT_LOCK:
        import torch

    return torch


@dataclass
class Outcome:
    """How a job ended: ``ok`` with a value, ``cancelled``, or ``error`` with one sentence."""

    status: str
    value: Any = None
    message: str = ""


class JobContext:
    """What the engine call sees: ``progress(done, total)``, ``report(obj)`` and ``cancelled()``."""

    def __init__(self, job: EngineJob) -> None:
        self._job = job

    def progress(self, done: int, total: int) -> None:
        if not self._job.detached:
            self._job.progressed.emit(int(done), int(total))

    def report(self, item: object) -> None:
        if not self._job.detached:  # a cancelled run keeps quiet until its thread ends
            self._job.queued_report.emit(item)

    def cancelled(self) -> bool:
        return self._job.cancel_requested


class EngineJob(QObject):
    """Run ``work(ctx)`` in a worker thread and deliver its result on the main thread.

    Args:
        work: the engine call; receives a ``JobContext`` and returns the result.
        on_result: main-thread callback with the result when the call succeeded.
        desc: text of the activity-bar progress bar.
        user_errors: exception types whose message is shown as the notification (others keep napari's
            traceback notification, since they are bugs, not user mistakes).
    """

    progressed = Signal(int, int)
    reported = Signal(object)  # on the main thread, never after a cancel
    ended = Signal(object)  # the Outcome, after on_result ran
    queued_report = Signal(object)  # from the worker; relayed as ``reported`` unless cancelled meanwhile

    def __init__(self, work: Callable[[JobContext], Any], on_result: Callable[[Any], None], desc: str,
                 user_errors: tuple[type[BaseException], ...] = (ValueError, OSError)) -> None:
        super().__init__()
        self._work, self._on_result, self.desc = work, on_result, desc
        self._user_errors = user_errors
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._detached = False
        self._pbar: Any = None
        self.worker: Any = None
        self.outcome: Outcome | None = None
        self.work_ended_at: float | None = None  # perf_counter() when the engine call returned
        self.progressed.connect(self._on_progress)
        self.queued_report.connect(self._relay_report)

    @property
    def cancel_requested(self) -> bool:
        # napari's own task manager (window close, activity dock) asks through worker.quit()
        return self._cancel.is_set() or bool(self.worker is not None and self.worker.abort_requested)

    @property
    def detached(self) -> bool:
        """True once ``stop`` was called: the result, if any, will be dropped."""
        return self._detached

    @property
    def running(self) -> bool:
        return self.worker is not None and not self._done.is_set()

    def start(self) -> EngineJob:
        from napari.qt.threading import create_worker

        self.worker = create_worker(self._run, _start_thread=False)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_crashed)
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Ask the engine to stop at its next check (between batches or optimiser steps)."""
        self._cancel.set()

    def stop(self, timeout: float = 3.0) -> bool:
        """Cancel, forget the result and wait for the thread; for a widget or viewer that is closing."""
        self._detached = True
        self._cancel.set()
        self._close_pbar()
        return self._done.wait(timeout) if self.worker is not None else True

    def _run(self) -> Outcome:
        from ..engine.errors import Cancelled

        try:
            import_torch()  # before the engine's imports: the device list may be importing it right now
            return Outcome("ok", self._work(JobContext(self)))
        except Cancelled:
            return Outcome("cancelled")
        except self._user_errors as err:
            return Outcome("error", message=_sentence(err))
        finally:
            self.work_ended_at = time.perf_counter()
            self._done.set()

    def _relay_report(self, item: object) -> None:
        # a report queued just before Cancel arrives after it: dropped here, or it would overwrite the
        # widget's "cancelled" with a step that no longer counts
        if not self._detached:
            self.reported.emit(item)

    def _on_progress(self, done: int, total: int) -> None:
        if self._detached:
            return
        if self._pbar is None:
            from napari.utils import progress

            self._pbar = progress(total=total, desc=self.desc)
        self._pbar.total = total
        self._pbar.n = done
        self._pbar.refresh()

    def _close_pbar(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None

    def _on_returned(self, outcome: Outcome) -> None:
        from napari.utils.notifications import show_error, show_info

        self._close_pbar()
        self.outcome = outcome
        if self._detached:
            return
        if outcome.status == "ok":
            try:
                self._on_result(outcome.value)
            except self._user_errors as err:
                outcome = self.outcome = Outcome("error", message=_sentence(err))
        if outcome.status == "cancelled":
            show_info(f"{self.desc}: cancelled")
        elif outcome.status == "error":
            show_error(f"{self.desc} failed: {outcome.message}")
        self.ended.emit(outcome)

    def _on_crashed(self, err: BaseException) -> None:
        # a bug, not a user mistake: napari already shows it with its traceback; just end cleanly
        self._close_pbar()
        self.outcome = Outcome("error", message=_sentence(err))
        if not self._detached:
            self.ended.emit(self.outcome)


def _sentence(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


class _JobSlot:
    """Holds the running job apart from the widget, so a dying widget can still stop it."""

    def __init__(self) -> None:
        self.job: EngineJob | None = None

    def stop(self, *_: Any) -> None:
        if self.job is not None and self.job.running:
            self.job.stop()


class WrappingLabel(QLabel):
    """A word-wrapped label that keeps the height its text needs at its current width.

    Qt sizes a word-wrapped label for a width of its own choosing; in a narrow dock the text then needs
    more lines than it was given and its last lines were cut off (seen in the screenshots: Segment's
    list of classes found, Clusters' summary). So the label asks for the height of its width.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)

    def _fit(self) -> None:
        # Qt's heightForWidth never answers below the minimum height: measure without it
        self.setMinimumHeight(0)
        self.setMinimumHeight(self.heightForWidth(max(self.width(), 1)))

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()


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
        self.status = WrappingLabel("")
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
    """A bold heading row for a form or a widget's body."""
    return QLabel(f"<b>{title}</b>")
