"""One first import of torch for the whole plugin, whichever worker thread asks first.

The device list (``DeviceCombo``) imports torch in a worker thread so that the dock opens at once; a
job started meanwhile imports it in another. Two first imports of torch running at the same time can
leave one thread with a half-initialised torch ("operator debug_mode_ops::annotate does not exist",
seen when a fine-tune started within a second of opening the widget). Every plugin thread that may be
first goes through :func:`import_torch`, so the second waits, in its own thread, for the whole import.
"""

from __future__ import annotations

import threading
from types import ModuleType

__all__ = ["import_torch", "TORCH_IMPORT_LOCK"]

TORCH_IMPORT_LOCK = threading.Lock()


def import_torch() -> ModuleType:
    """Import torch, or wait for the thread importing it; returns the module. Never call it on the
    viewer's thread before torch is loaded: the first import takes about 1.5 s."""
    with TORCH_IMPORT_LOCK:
        import torch

    return torch
