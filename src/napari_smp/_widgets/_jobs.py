"""One engine call in a napari worker thread, with progress, cancel and clean shutdown.

The engine reports through plain callables and polls a cancel callable (engine/predictor.py,
engine/trainer.py). ``EngineJob`` gives it both, runs it in a napari ``FunctionWorker`` and relays
progress and reports to the main thread through Qt signals (queued across threads), where they drive
an activity-bar progress bar and the widget's plots. User mistakes come back as one sentence in a
napari notification; a cancel is reported as information, not as an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qtpy.QtCore import QObject, Signal

__all__ = ["EngineJob", "JobContext", "Outcome"]


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
            self._job.reported.emit(item)

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
    reported = Signal(object)
    ended = Signal(object)  # the Outcome, after on_result ran

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
        from ._torch import import_torch

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
