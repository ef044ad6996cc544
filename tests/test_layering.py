"""The import arrows of ARCHITECTURE.md, checked statically on the source and in fresh interpreters.

Layers, left may not import right::

    config <- io, metrics, model <- engine <- cli, _widgets, _napari_io

Every ``import`` in src/napari_smp is read with :mod:`ast` (top-level, inside functions and under
``TYPE_CHECKING`` alike: a lazy import is still an arrow), resolved to the package module it names, and
checked against the allowed arrows; nothing imports ``_widgets`` but napari's entry points (the
manifest); and the module graph has no import circle. The checker is also run on made-up reversed
arrows and a made-up circle, to show that it would catch them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "napari_smp"

#: layer -> the layers it may import (its own modules always)
ALLOWED: dict[str, set[str]] = {
    "root": set(),  # napari_smp/__init__.py: the version and public names
    "_cpu": set(),
    "_lazy": set(),
    "config": set(),
    "io": {"root", "config"},
    "metrics": {"root", "config"},
    "model": {"root", "config"},
    "engine": {"root", "_cpu", "_lazy", "config", "io", "metrics", "model"},
    "cli": {"root", "_cpu", "_lazy", "config", "io", "metrics", "engine"},
    "_napari_io": {"root", "config", "io"},
    "_widgets": {"root", "_cpu", "_lazy", "config", "io", "metrics", "engine", "_napari_io"},
}


def layer_of(module: str) -> str:
    """``napari_smp.engine.training.loop`` -> ``engine``; ``napari_smp.commands`` -> ``cli``."""
    parts = module.split(".")
    if parts == [PACKAGE]:
        return "root"
    top = parts[1]
    return "cli" if top in ("cli", "commands") else top


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: set[str]) -> set[str]:
    """The package modules an import statement loads (the most specific known name of each)."""
    targets = []
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = importer.split(".")
            base = base if is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        targets = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
    found = set()
    for name in targets:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith(PACKAGE):
            found.add(name)
    # "from .pkg import sub" names both pkg and pkg.sub: keep the most specific
    return {n for n in found if not any(o.startswith(n + ".") for o in found)}


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the package modules it imports, from ``{module: (source text, is_package)}``."""
    known = set(sources)
    graph = {}
    for module, (text, is_package) in sources.items():
        edges = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _resolve(module, is_package, node, known)
        graph[module] = edges - {module}
    return graph


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every arrow that points the wrong way, as ``importer -> imported (layer -> layer)``."""
    bad = []
    for module, targets in sorted(graph.items()):
        src = layer_of(module)
        for target in sorted(targets):
            dst = layer_of(target)
            if dst != src and dst not in ALLOWED[src]:
                bad.append(f"{module} -> {target} ({src} -> {dst})")
    return bad


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles between modules (strongly connected components of more than one module).

    A package's ``__init__`` importing its own submodules, and those submodules importing siblings, is
    not a circle; a submodule importing the package ``__init__`` that imports it back is.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package_sources() -> dict[str, tuple[str, bool]]:
    return {
        module_name(p): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
        for p in sorted((SRC / PACKAGE).rglob("*.py"))
    }


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(_package_sources())


def test_every_module_has_a_layer(graph):
    assert {layer_of(m) for m in graph} <= set(ALLOWED)


def test_arrows_point_one_way(graph):
    assert violations(graph) == []


def test_nothing_imports_the_widgets(graph):
    importers = sorted(m for m, targets in graph.items() if layer_of(m) != "_widgets" and
                       any(layer_of(t) == "_widgets" for t in targets))
    assert importers == []  # napari reaches them through napari.yaml only


def test_no_import_circles(graph):
    assert circles(graph) == []


@pytest.mark.parametrize(
    "importer, statement",
    [
        ("napari_smp.model.net", "from ..engine.training import fit"),  # model -> engine
        ("napari_smp.config", "import napari_smp.io"),  # config -> io
        ("napari_smp.engine.demo", "from .._widgets.demo_viewer import open_demo_viewer"),  # engine -> _widgets
        ("napari_smp.io.read", "from ..metrics import dice"),  # io -> metrics (siblings)
        ("napari_smp.metrics.scores", "from napari_smp.engine.errors import EngineError"),  # metrics -> engine
        ("napari_smp.commands.finetune", "from .._widgets import FinetuneWidget"),  # cli -> _widgets
        ("napari_smp._widgets.segment", "from ..model import build_model"),  # widgets touch model internals
    ],
)
def test_a_reversed_arrow_is_caught(importer, statement):
    sources = _package_sources()
    text, is_package = sources[importer]
    sources[importer] = (text + "\n\ndef _late():\n    " + statement + "\n", is_package)
    assert violations(import_graph(sources)), statement


def test_a_circle_is_caught():
    sources = _package_sources()
    text, is_package = sources["napari_smp.io.labels"]
    sources["napari_smp.io.labels"] = (text + "\nfrom .read import read_volume\n", is_package)
    assert ["napari_smp.io.labels", "napari_smp.io.read"] in circles(import_graph(sources))


# the same arrows at run time: what a fresh interpreter loads


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
        "napari_smp.engine.training",
        "napari_smp.engine.inference",
        "napari_smp.engine.pretraining",
        "napari_smp.cli",
        "napari_smp.commands",
    ],
)
def test_engine_and_cli_load_no_gui(module):
    assert not _loaded(module) & GUI


@pytest.mark.parametrize(
    "module",
    ["napari_smp", "napari_smp.config", "napari_smp.io", "napari_smp.metrics", "napari_smp.engine",
     "napari_smp.engine.volumes", "napari_smp.engine.inference.propagation", "napari_smp.engine.classes"],
)
def test_light_modules_load_no_torch(module):
    loaded = _loaded(module)
    assert "torch" not in loaded and not loaded & GUI
