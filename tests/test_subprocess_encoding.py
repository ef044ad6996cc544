"""Every subprocess call in the repository decodes its output as UTF-8 with errors replaced.

A fresh machine may run in the C locale (``LANG``/``LC_ALL`` unset or ``C``, ``PYTHONUTF8=0``), where
``text=True`` alone decodes with ASCII and a single ``…`` in pip's output raises ``UnicodeDecodeError``.
This test reads the source (no call is run), so a new call without the two arguments fails here, not
on the first machine with another locale.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CALLS = {"run", "Popen", "check_output", "check_call", "call"}
_TREES = ("src", "scripts", "benchmarks", "tests")


def _subprocess_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _CALLS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "subprocess"
    ]


def _python_files() -> list[Path]:
    return sorted(p for tree in _TREES for p in (ROOT / tree).rglob("*.py") if ".venv" not in p.parts)


def _keywords(call: ast.Call) -> dict[str, object]:
    return {kw.arg: (kw.value.value if isinstance(kw.value, ast.Constant) else kw.value) for kw in call.keywords}


def test_the_scan_finds_the_calls_we_know_of() -> None:
    # the fetch script pipes pip's output (every pip call goes through its one ``_pip`` helper): if the
    # scan missed it, the test below would prove nothing
    assert len(_subprocess_calls(ROOT / "scripts" / "fetch_data.py")) >= 1


def test_subprocess_output_is_decoded_as_utf8_with_errors_replaced() -> None:
    offenders = []
    for path in _python_files():
        for call in _subprocess_calls(path):
            kw = _keywords(call)
            if not ({"text", "universal_newlines", "encoding", "capture_output", "stdout"} & set(kw)):
                continue  # output not captured: nothing is decoded
            if kw.get("encoding") != "utf-8" or kw.get("errors") != "replace":
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert not offenders, f"pass encoding='utf-8', errors='replace' at {offenders}"
