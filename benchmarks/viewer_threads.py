"""Fine-tuning from the viewer: training speed and viewer responsiveness with 1 and with 2 torch threads.

The Fine-tune widget trains in a worker thread while the viewer stays in the user's hands. On a
2-core machine it can give torch every core (fastest training when nothing else runs) or every core
but one (``viewer_threads()``, the widget's default), which leaves the viewer a core to draw on. This
script measures both choices the way a user meets them: the real ``FinetuneWidget`` in a real napari
viewer (run it under Xvfb), the phantom with 4 painted slices, the lite defaults, a fixed time budget,
and a "user" who scrolls through the slices every 100 ms (each step redraws the canvas), while a
10 ms main-thread timer records every stall of the event loop.

    xvfb-run -a python benchmarks/viewer_threads.py [--budget 40] [--threads 1 2] [--no-write]

Reported per thread count: optimiser steps and steps/s, the longest event-loop stall, its 99th
percentile, and the share of 10 ms ticks that followed a gap of more than 50 ms, with the scrolling on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

SECTION = "Fine-tuning from the viewer: threads"


def _viewer_with_phantom():  # -> napari.Viewer
    import napari

    from napari_smp.engine.demo import sparse_annotation
    from napari_smp.io.phantom import make_phantom

    ph = make_phantom(0)
    sparse, _ = sparse_annotation(ph.labels, 4)
    viewer = napari.Viewer(show=True)
    viewer.add_image(ph.image, name="ct", scale=ph.meta.spacing, contrast_limits=(-200, 300))
    viewer.add_labels(sparse, name="annotation", scale=ph.meta.spacing)
    return viewer


def _run_once(threads: int, budget: float) -> dict[str, float]:
    """One fine-tune from the widget with ``threads`` torch threads; stalls seen while it trained."""
    # torch first, on this thread: the device combo imports it in a worker thread, and two concurrent
    # first imports of torch fail
    import torch  # noqa: F401
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_smp._widgets.finetune import FinetuneWidget
    from napari_smp.config import TrainConfig

    viewer = _viewer_with_phantom()
    app = QApplication.instance()
    ticks: list[float] = []
    tick = QTimer()
    tick.setInterval(10)
    tick.timeout.connect(lambda: ticks.append(time.perf_counter()))
    depth = viewer.layers["ct"].data.shape[0]
    scroll = QTimer()  # the user moving through the volume: every move redraws the canvas
    scroll.setInterval(100)
    scroll.timeout.connect(lambda: viewer.dims.set_current_step(0, (viewer.dims.current_step[0] + 1) % depth))
    with tempfile.TemporaryDirectory() as tmp:
        w = FinetuneWidget(viewer)
        viewer.window.add_dock_widget(w)
        w.image_combo.set_layer("ct")
        w.labels_combo.set_layer("annotation")
        w.train_config_override = TrainConfig(threads=threads)  # everything else: the widget's defaults
        w.device_combo.setCurrentText("cpu")
        w.steps_spin.setValue(0)
        w.budget_spin.setValue(budget)
        w.fill_check.setChecked(False)  # the fine-tune alone, as measured before Start filled the volume
        w.save_edit.setText(str(Path(tmp) / "model.safetensors"))
        for _ in range(20):
            app.processEvents()
        ticks.append(time.perf_counter())
        tick.start()
        scroll.start()
        job = w.start()
        if job is None:
            raise RuntimeError("the widget refused to start")
        deadline = time.perf_counter() + budget + 120
        while w.last_result is None and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.002)
        tick.stop()
        scroll.stop()
        if w.last_result is None:
            raise RuntimeError("the fine-tune did not finish")
        ended = job.work_ended_at or time.perf_counter()
        reports = w.last_result.train.reports
        viewer.close()
    t = np.asarray([x for x in ticks if x < ended] + [ended])
    gaps = np.diff(t)
    late = float((gaps > 0.05).sum()) / max(len(gaps), 1)
    return {
        "threads": threads,
        "steps": len(reports),
        "train_s": reports[-1].elapsed if reports else float("nan"),
        "longest_ms": 1000 * float(gaps.max()),
        "p99_ms": 1000 * float(np.quantile(gaps, 0.99)),
        "late_share": late,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=40.0, help="seconds of fine-tuning per run")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    for n in args.threads:
        r = _run_once(n, args.budget)
        rows.append(
            f"| {n} | {r['steps']} | {r['steps'] / r['train_s']:.2f} | {r['longest_ms']:.0f} ms | "
            f"{r['p99_ms']:.0f} ms | {100 * r['late_share']:.1f} % |"
        )
        print(rows[-1], flush=True)
    if args.no_write:
        return
    lines = [
        f"The Fine-tune widget in a real napari viewer (Xvfb, xcb), phantom with 4 painted slices, lite defaults, "
        f"{args.budget:.0f} s budget, CPU; a timer scrolls one slice every 100 ms (each move redraws the canvas) "
        "while a 10 ms main-thread timer records the event loop's stalls until the training returns. The widget's "
        "default is every core but one (`viewer_threads()`).",
        "",
        "| torch threads | steps | steps/s | longest stall | 99th percentile stall | gaps > 50 ms (share of ticks) |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    write_section(SECTION, "\n".join(lines), packages=("torch", "napari"),
                  script="xvfb-run -a python benchmarks/viewer_threads.py")


if __name__ == "__main__":
    main()
