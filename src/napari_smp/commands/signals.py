"""Ctrl-C and SIGTERM on the command line: raised where the program is, and remembered.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be. A library that
catches everything at that moment (some do while they import) swallows it, and the run would go on to
write its output as if nobody had asked it to stop. So the handlers here also remember the signal;
long work polls :func:`received` through its cancel hook and stops at its next step, writing nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

__all__ = ["Terminated", "listen", "received", "exit_code"]

_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every ``finally`` (temporary files) runs as for Ctrl-C."""


def _on_signal(signum: int, frame: object) -> NoReturn:
    _received.append(signum)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def received() -> bool:
    """Whether Ctrl-C or SIGTERM arrived since :func:`listen` began (a cancel hook for long work)."""
    return bool(_received)


def exit_code() -> int:
    """The shell's code for the first signal received: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + int(_received[0]) if _received else 130


@contextmanager
def listen() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as above while the block runs (main thread only), then restore the old handlers.

    A SIGINT that the parent ignores (a background job) stays ignored, as the shell meant it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    ours = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        ours.append(signal.SIGINT)
    previous = {s: signal.signal(s, _on_signal) for s in ours}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
