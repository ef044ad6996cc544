"""The import arrows of ARCHITECTURE.md, checked in fresh interpreters."""

import subprocess
import sys

import pytest


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", errors="replace", check=True
    ).stdout
    return set(out.split())


GUI = {"napari", "qtpy", "magicgui", "PyQt6", "PyQt5", "PySide6"}


@pytest.mark.parametrize(
    "module",
    [
        "napari_smp.engine.trainer",
        "napari_smp.engine.predictor",
        "napari_smp.engine.train",
        "napari_smp.cli",
        "napari_smp.commands",
    ],
)
def test_engine_and_cli_load_no_gui(module):
    assert not _loaded(module) & GUI


@pytest.mark.parametrize("module", ["napari_smp", "napari_smp.config", "napari_smp.io", "napari_smp.metrics"])
def test_light_modules_load_no_torch(module):
    loaded = _loaded(module)
    assert "torch" not in loaded and not loaded & GUI
