"""The plots draw with matplotlib in their own thread: no widget module imports matplotlib, a training
plot shows what it was given, and the viewer's thread only sets the finished picture."""

from __future__ import annotations

import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

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


def _report(step: int, loss: float, k: int | None = 4, warming_up: bool = False) -> SimpleNamespace:
    return SimpleNamespace(step=step, loss=loss, k=k, warming_up=warming_up)


def _drawn_in(plot, threads: set[str]) -> None:
    """Record the name of every thread that draws ``plot``'s figure."""
    holder = plot._figure
    get = holder.get
    holder.get = lambda: (threads.add(threading.current_thread().name), get())[1]


def test_training_plot_draws_its_curves_in_the_plot_thread(qtbot):
    plot = TrainingPlot(interval_ms=50)
    qtbot.addWidget(plot)
    plot.resize(320, 200)
    threads: set[str] = set()
    _drawn_in(plot, threads)
    plot.reset(max_steps=10, slots=8)
    for step, loss in ((1, 2.0), (2, 1.5), (3, 1.0)):
        plot.add(_report(step, loss, warming_up=step < 2))
    plot.finish()
    qtbot.waitUntil(lambda: plot.pictures >= 2 and not plot._busy, timeout=60_000)
    figure = plot._figure.figure
    xs, ys = figure._loss_line.get_data()
    assert list(xs) == [1, 2, 3] and list(ys) == pytest.approx([1.0, 0.75, 0.5])  # relative to the first loss
    assert list(figure._k_line.get_data()[1]) == [4, 4, 4] and figure._k_line.get_visible()
    assert list(figure._warm_line.get_xdata()) == [2, 2]  # the first step past the warm-up
    assert plot.draws >= 1 and figure._ax.get_xlim() == (0, 10)  # the axes of the run's budget
    assert threads == {"napari-smp-plots_0"}  # never the viewer's thread
    assert not plot.pixmap().isNull() and plot.pixmap().width() >= 200


def test_training_plot_grows_its_axes_and_hides_k_for_a_model_without_a_bank(qtbot):
    plot = TrainingPlot(interval_ms=50)
    qtbot.addWidget(plot)
    plot.reset(max_steps=4, slots=8)
    for step in range(1, 10):
        plot.add(_report(step, 1.0, k=None))
    plot.finish()
    qtbot.waitUntil(lambda: plot.pictures >= 1 and not plot._busy and plot._waiting is None, timeout=60_000)
    figure = plot._figure.figure
    assert plot.ks == [] and plot.k_hidden and not figure._k_line.get_visible()
    assert figure._ax.get_xlim() == (0, 16)  # 4 doubled until step 9 fits


def test_bar_plot_draws_the_chart_in_the_plot_thread(qtbot):
    chart = BarPlot()
    qtbot.addWidget(chart)
    chart.resize(300, 180)
    threads: set[str] = set()
    _drawn_in(chart, threads)
    chart.line([0, 1, 2], [0.5, 0.7, 0.9], "axial slice", "Dice", "Dice per slice: liver")
    qtbot.waitUntil(lambda: chart.pictures == 1, timeout=60_000)
    ax = chart._figure.figure.ax
    assert ax.get_title() == "Dice per slice: liver" and list(ax.lines[0].get_ydata()) == [0.5, 0.7, 0.9]
    assert threads == {"napari-smp-plots_0"}
    assert (chart.pixmap().width(), chart.pixmap().height()) == (300, 180)


def test_a_plot_closed_while_its_picture_is_drawn_gets_nothing_and_nothing_crashes(qtbot):
    # the picture arrives after the plot is gone: the relay drops it (emitting on the closed plot's own
    # signal from the plot thread crashed the process with a segfault)
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from napari_smp._widgets import _display

    release = threading.Event()
    drawn = threading.Event()

    def slow_picture() -> np.ndarray:
        release.wait(10)
        drawn.set()
        return np.zeros((4, 4, 4), np.uint8)

    plot = _display._Picture(20)
    key = plot._key
    relay = _display._relay()
    assert relay.live[key]() is plot
    plot._draw(slow_picture)
    plot.deleteLater()
    for _ in range(5):  # the Qt object goes; the Python wrapper (held here) stays
        QApplication.processEvents()
        qtbot.wait(20)
    release.set()
    assert drawn.wait(10)
    # the queued delivery runs on this (the main) thread, meets a deleted plot and drops it, no crash
    qtbot.waitUntil(lambda: key not in relay.live, timeout=5_000)
    # a live plot still gets its pictures through the same relay
    alive = _display._Picture(20)
    alive._draw(lambda: np.full((3, 5, 4), 255, np.uint8))
    qtbot.waitUntil(lambda: alive.pictures == 1, timeout=10_000)
    assert alive.pixmap().width() == 5


def test_a_table_is_as_tall_as_its_rows_up_to_a_cap(qtbot):
    """A short table leaves the charts under it in view; a long one stops at TABLE_MAX_ROWS rows and scrolls."""
    from napari_smp._widgets._display import TABLE_MAX_ROWS, fill_table, make_table

    table = make_table(60)
    qtbot.addWidget(table)
    fill_table(table, ["class", "Dice"], [[f"c{i}", 0.5] for i in range(3)])
    short = table.maximumHeight()
    assert short >= 3 * table.rowHeight(0) + table.horizontalHeader().sizeHint().height()
    assert short < 6 * table.rowHeight(0) + table.horizontalHeader().sizeHint().height()
    fill_table(table, ["class", "Dice"], [[f"c{i}", 0.5] for i in range(40)])
    capped = table.maximumHeight()
    assert short < capped < (TABLE_MAX_ROWS + 3) * table.rowHeight(0) + table.horizontalHeader().sizeHint().height()
    fill_table(table, ["class", "Dice"], [[f"c{i}", 0.5] for i in range(80)])
    assert table.maximumHeight() == capped  # the cap, not the row count
