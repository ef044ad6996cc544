"""Tests of the scripts in benchmarks/ (not part of the package).

The benchmark scripts import each other as top-level modules (``from _report import ...``), as when run
as ``python benchmarks/x.py``; the tests build their tiny models with tests/engine/tiny.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]

for _folder in (_ROOT / "benchmarks", _ROOT / "tests" / "engine"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))
