"""Shared test set-up.

GUI tests need a real OpenGL canvas: pytest-xvfb starts Xvfb when it is installed and on PATH.
Without Xvfb and without a display, Qt would abort the whole run, so GUI tests are skipped instead.
``load_fetch_module`` is shared by the tests of scripts/fetch_data.py and the real-data fixtures of tests/metrics.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

# tests use tiny tensors: one thread avoids OpenMP spin-waiting when the 2 cores are shared
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NAPARI_SMP_THREADS", "1")  # what the engine reads when a config names no count
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

_HAS_DISPLAY = bool(os.environ.get("DISPLAY")) or shutil.which("Xvfb") is not None


def pytest_configure(config: pytest.Config) -> None:
    if not _HAS_DISPLAY:
        # never let Qt abort the run; GUI tests are skipped below
        config.option.no_xvfb = True if hasattr(config.option, "no_xvfb") else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gui = pytest.mark.skip(reason="no display and no Xvfb: GUI tests need a real OpenGL canvas")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gui" in item.keywords and not _HAS_DISPLAY:
            item.add_marker(skip_gui)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


_FETCH_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_data.py"


def _load_fetch_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("napari_smp_fetch_data", _FETCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="session")
def load_fetch_module() -> Callable[[], ModuleType]:
    """Loader of a fresh copy of scripts/fetch_data.py (tests may monkeypatch it freely)."""
    return _load_fetch_module
