"""The plots load matplotlib off the viewer's thread: no widget module imports it, and a plot made before
it is loaded keeps what it was given and draws it when its canvas arrives."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from napari_smp._widgets import _display
from napari_smp._widgets._display import BarPlot, TrainingPlot


def test_no_widget_module_loads_matplotlib():
    # opening a widget from the Plugins menu imports its module on the viewer's thread: importing
    # matplotlib's Qt backend there froze the viewer 2.1 s on a busy 2-core CPU
    modules = ["finetune", "segment", "clusters", "evaluate", "pretrain", "demo_viewer"]
    code = "import sys; " + "; ".join(f"import napari_smp._widgets.{m}" for m in modules) + \
        "; print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", errors="replace", check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.fixture
def canvas_not_loaded(monkeypatch):
    """As in a fresh viewer: the canvas module is not imported yet, so plots take the worker path."""
    import napari_smp._widgets._plot_canvas  # noqa: F401  (so that monkeypatch puts it back)

    monkeypatch.delitem(sys.modules, _display._CANVAS_MODULE)


def _report(step: int, loss: float, k: int | None = 4, warming_up: bool = False) -> SimpleNamespace:
    return SimpleNamespace(step=step, loss=loss, k=k, warming_up=warming_up)


def test_training_plot_keeps_early_reports_and_draws_them_when_its_canvas_arrives(qtbot, canvas_not_loaded):
    plot = TrainingPlot(interval_ms=50)
    qtbot.addWidget(plot)
    assert plot.canvas is None and plot._loader is not None  # a worker is importing matplotlib
    plot.reset(max_steps=10, slots=8)
    for step, loss in ((1, 2.0), (2, 1.5), (3, 1.0)):
        plot.add(_report(step, loss))
    plot.flush()  # nothing to draw on yet: kept, not lost
    qtbot.waitUntil(lambda: plot.canvas is not None, timeout=60_000)
    assert plot.draws >= 1  # the axes of the run, drawn once the canvas exists
    xs, ys = plot._loss_line.get_data()
    assert list(xs) == [1, 2, 3] and list(ys) == pytest.approx([1.0, 0.75, 0.5])  # relative to the first loss
    assert list(plot._k_line.get_data()[1]) == [4, 4, 4]


def test_training_plot_hides_k_for_a_model_without_a_bank(qtbot):
    plot = TrainingPlot(interval_ms=50)
    qtbot.addWidget(plot)
    qtbot.waitUntil(lambda: plot.canvas is not None, timeout=60_000)
    plot.reset(max_steps=10, slots=8)
    plot.add(_report(1, 2.0, k=None))
    plot.finish()
    assert plot.ks == [] and not plot._k_line.get_visible()


def test_bar_plot_draws_the_chart_asked_for_before_its_canvas_arrived(qtbot, canvas_not_loaded):
    chart = BarPlot()
    qtbot.addWidget(chart)
    chart.line([0, 1, 2], [0.5, 0.7, 0.9], "axial slice", "Dice", "Dice per slice: liver")
    assert chart.canvas is None
    qtbot.waitUntil(lambda: chart.canvas is not None, timeout=60_000)
    ax = chart.canvas.figure.axes[0]
    assert ax.get_title() == "Dice per slice: liver" and list(ax.lines[0].get_ydata()) == [0.5, 0.7, 0.9]
