"""The io layer stays light: no torch, no napari, no Qt (ARCHITECTURE.md import arrows)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_io_imports_neither_torch_nor_napari() -> None:
    code = (
        "import sys, napari_smp.io\n"
        "bad = [m for m in ('torch', 'napari', 'qtpy', 'PyQt6', 'magicgui') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, encoding="utf-8", errors="replace", env=env, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == ""
