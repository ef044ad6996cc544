"""All-or-nothing file output: write into a hidden folder beside the target, then rename into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move what it wrote to ``path.parent`` only if it succeeded.

    The temporary folder lies in the target folder, so ``os.replace`` is a rename on one file
    system. Formats with a detached data file (``.mhd`` + ``.zraw``, ``.nhdr`` + data) are moved
    data first and header last, so a reader never sees a header whose data is missing.

    Args:
        path: final file path.
        write: writes the file(s) given the temporary path (same name, other folder).

    Raises:
        Whatever ``write`` raises; then nothing is left behind and an existing ``path`` is untouched.
    """
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        write(tmpdir / path.name)
        produced = sorted(tmpdir.iterdir(), key=lambda f: f.name == path.name)  # main file last
        for item in produced:
            os.replace(item, path.parent / item.name)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` all at once or not at all."""
    path = Path(path)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
