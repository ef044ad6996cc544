"""Does any widget freeze the viewer? Every widget driven as a user drives it, main-thread stalls per action.

A real napari viewer (run it under Xvfb) opens the dev CT (the TotalSegmentator DICOM series, 20 x 512
x 512, and its 8-organ label map as the ground truth; the phantom when the dev CT cannot be fetched,
and the table then says so). Each widget is opened from the Plugins menu, then used as a user would
use it: paint four slices (whole-slice fills and brush strokes), Fine-tune Start with the memory bank
and a short budget (segmenting when done), Segment, Clusters (the fine-tuned model has a bank),
Metrics (compute with its chart, Dice per slice), Pre-train (shortest budget), and the View panel's
window presets and convention switch. Once Fine-tune reports its first step, a "user" scrolls one slice
every 100 ms for 3 s (each move redraws the canvas), measured as its own row so that the widget's rows
are the widget's own cost; a 10 ms main-thread timer records every event-loop stall
(``_stalls.StallMeter``); a watchdog samples the main thread's stack whenever it is silent for 100 ms,
so a stall row names the code that held the loop.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/viewer_stalls.py [--budget 30] [--no-write]

Reported per widget and action: how long it took, the longest event-loop stall, its 99th percentile,
the number of stalls over 200 ms (the project's limit), how the action ended, and where the main
thread was during the longest stalls. Runs in about 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))
from _report import load_line, write_section  # noqa: E402
from _stalls import StallMeter, wait_until  # noqa: E402

SECTION = "The viewer never freezes: main-thread stalls per widget"
PLUGIN = "napari-smp"
LIMIT_MS = 200.0


def dev_ct_paths() -> tuple[Path, Path] | None:
    """(DICOM folder or NIfTI image, label map) of the dev CT, fetched when missing; None if it cannot be."""
    import fetch_data  # scripts/fetch_data.py

    try:
        folder = fetch_data.fetch_dev_ct()
    except Exception as err:  # offline, or the registry refused: the phantom stands in, and the table says so
        print(f"dev CT unavailable ({err}); using the phantom", flush=True)
        return None
    dicom = folder / "example_ct_dicom"
    image = dicom if dicom.is_dir() else folder / fetch_data.DEV_CT_IMAGE
    return image, folder / fetch_data.DEV_CT_LABELS


class Session:
    """The viewer, the meter, the scrolling user and the widgets opened so far."""

    def __init__(self) -> None:
        import napari
        from qtpy.QtCore import QTimer

        self.viewer = napari.Viewer(title="napari-smp stalls", show=True)
        self.viewer.window.resize(1500, 940)
        self.meter = StallMeter()
        self.widgets: dict[str, Any] = {}
        self.outcomes: dict[str, str] = {}
        self._scroll = QTimer()
        self._scroll.setInterval(100)
        self._scroll.timeout.connect(self._next_slice)

    def _next_slice(self) -> None:
        dims = self.viewer.dims
        depth = int(dims.nsteps[0]) if dims.ndim >= 3 else 1
        dims.set_current_step(0, (dims.current_step[0] + 1) % max(depth, 1))

    def scrolling(self, on: bool) -> None:
        (self._scroll.start if on else self._scroll.stop)()

    def widget(self, name: str) -> Any:
        """Open ``name`` from the Plugins menu (once) and bring its tab forward."""
        if name not in self.widgets:
            with self.meter.action(f"{name}: open from the Plugins menu"):
                dock, w = self.viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=bool(self.widgets))
                wait_until(lambda: True, 5, name, settle=0.5)
            self.outcomes[f"{name}: open from the Plugins menu"] = "ok"
            self.widgets[name] = (dock, w)
        dock, w = self.widgets[name]
        dock.raise_()
        return w

    def run_job(self, action: str, w: Any, press: Any, timeout: float,
                scroll_when: Any = None) -> None:
        """Press a widget's button (``press()``) and measure until its job has ended and the viewer settled.

        ``scroll_when``: a condition (e.g. "the first step is reported"); once it holds, the user scrolls
        for 3 s, measured as its own action ("Viewer: scroll 3 s while <widget> works") and left out of
        this one, so that this row is the widget's own cost and that one the canvas's under load.
        """
        before = w.job
        t0 = time.perf_counter()
        press()
        job = w.job
        if job is None or job is before:
            self.meter.measure(action, t0, time.perf_counter())
            self.outcomes[action] = f"refused: {w.status.text()}"
            return
        if scroll_when is not None:
            wait_until(lambda: scroll_when() or job.outcome is not None, timeout, action, settle=0)
            if job.outcome is None:
                self.meter.measure(action, t0, time.perf_counter())
                scrolled = f"Viewer: scroll 3 s while {action.split(':')[0]} works"
                with self.meter.action(scrolled):
                    self.scrolling(True)
                    end = time.perf_counter() + 3
                    wait_until(lambda: time.perf_counter() > end, 10, "scroll", settle=0)
                    self.scrolling(False)
                self.outcomes[scrolled] = "ok"
                t0 = time.perf_counter()
        wait_until(lambda: job.outcome is not None, timeout, action, settle=1.0)
        a = self.meter.measure(action, t0, time.perf_counter())
        out = job.outcome
        status = w.status.text().strip().splitlines()
        said = f" ({status[0]})" if status and out.status == "ok" else ""
        self.outcomes[action] = ("ok" if out.status == "ok" else f"{out.status}: {out.message}") + said
        print(f"  {action}: {a.seconds:.1f} s in all, longest stall {a.longest_ms:.0f} ms  [{a.cause()}]; "
              f"{self.outcomes[action]}", flush=True)


def open_data(s: Session) -> tuple[str, str, str]:
    """Open the CT and its labels as a user does (File > Open); returns (image, ground truth, data note)."""
    from napari_smp.io import make_phantom, write_labels, write_volume

    paths = dev_ct_paths()
    note = "the dev CT (TotalSegmentator 2.18.0 example, DICOM series, 20 x 512 x 512)"
    if paths is None:
        ph = make_phantom(0)
        tmp = Path(tempfile.mkdtemp(prefix="stalls-phantom-"))
        write_volume(tmp / "phantom_ct.nii.gz", ph.image, ph.meta)
        write_labels(tmp / "phantom_labels.nii.gz", ph.labels, ph.meta)
        paths = (tmp / "phantom_ct.nii.gz", tmp / "phantom_labels.nii.gz")
        note = "the phantom (48 x 160 x 160): the dev CT could not be fetched"
    with s.meter.action("File: open the CT"):
        ct = s.viewer.open(str(paths[0]), plugin=PLUGIN)[0]
        wait_until(lambda: True, 5, "open", settle=0.5)
    with s.meter.action("File: open its label map"):
        gt = s.viewer.open(str(paths[1]), plugin=PLUGIN)[0]
        gt.visible = False
        wait_until(lambda: True, 5, "open", settle=0.5)
    s.outcomes["File: open the CT"] = s.outcomes["File: open its label map"] = "ok"
    gt.name = "ground truth"
    return ct.name, gt.name, note


def paint(s: Session, image: str, truth: str) -> list[int]:
    """A new Labels layer; four slices filled from the ground truth (as a fill tool would) and brush strokes."""
    from napari_smp._widgets._layers import derived_layer_kwargs
    from napari_smp.engine.demo import sparse_annotation

    ct, gt = s.viewer.layers[image], s.viewer.layers[truth]
    _, picks = sparse_annotation(np.asarray(gt.data), 4)
    with s.meter.action("Paint: new labels layer"):
        layer = s.viewer.add_labels(np.zeros(ct.data.shape, np.uint8), name="annotation",
                                    **derived_layer_kwargs(ct))
        wait_until(lambda: True, 5, "new layer", settle=0.3)
    s.outcomes["Paint: new labels layer"] = "ok"
    s.viewer.layers.selection.active = layer
    layer.mode = "paint"
    layer.brush_size = 10
    truth_data = np.asarray(gt.data)
    with s.meter.action(f"Paint: {len(picks)} slices (fills + strokes)"):
        for z in picks:
            s.viewer.dims.set_current_step(0, z)
            wait_until(lambda: True, 5, "move", settle=0.2)
            for value in np.unique(truth_data[z]):
                if value == 0:
                    continue
                yy, xx = np.nonzero(truth_data[z] == value)
                layer.data_setitem((np.full(yy.shape, z), yy, xx), int(value))
                wait_until(lambda: True, 5, "fill", settle=0.05)
            y0, x0 = (d // 2 for d in truth_data.shape[1:])
            for i in range(12):  # a short stroke of the brush across the slice's centre
                layer.paint((z, y0, x0 + 3 * i), int(truth_data[z, y0, x0 + 3 * i]))
                wait_until(lambda: True, 5, "stroke", settle=0.02)
    s.outcomes[f"Paint: {len(picks)} slices (fills + strokes)"] = "ok"
    return picks


def correct(s: Session, ft: Any, truth: str) -> None:
    """A correction as issue 29 has it: paint the slice Fine-tune suggests (filled from the ground truth, as a
    fill tool would), then Refine from last model; the row's time runs from the click to the refreshed layer."""
    suggestion = getattr(ft, "_suggestion", None)
    if suggestion is None or not ft.refine_button.isEnabled():
        return  # no network was trained (a busy CPU spent the budget on propagation): nothing to go on from
    _, where = suggestion
    z = where.slice
    layer, truth_data = s.viewer.layers["annotation"], np.asarray(s.viewer.layers[truth].data)
    ft.next_button.click()  # the button a user presses: the viewer goes to the slice
    for value in np.unique(truth_data[z]):
        if value:
            yy, xx = np.nonzero(truth_data[z] == value)
            layer.data_setitem((np.full(yy.shape, z), yy, xx), int(value))
    wait_until(lambda: True, 5, "paint", settle=0.3)
    s.run_job(f"Fine-tune: a correction (paint suggested slice {z}, Refine from last model)", ft,
              ft.refine_button.click, 600)
    done = getattr(ft.last_result, "completion", None)
    if done is not None:  # what the correction spent its seconds on, for the log
        reused = done.propagation.reused
        print(f"  correction: {done.seconds}; stretches reused: "
              f"{'none' if reused is None else int(reused.sum())} slices", flush=True)


def run(budget: float, pretrain_budget: float) -> tuple[list[Any], dict[str, str], str]:
    import traceback

    # a bug in a widget's slot is printed and shows as that action's outcome, not a reason for Qt to abort
    sys.excepthook = lambda *exc: traceback.print_exception(*exc)
    s = Session()  # the viewer makes the Qt application the meter's timer needs
    meter = s.meter
    meter.start()
    tmp = Path(tempfile.mkdtemp(prefix="napari-smp-stalls-"))
    image, truth, note = open_data(s)
    floor = "napari alone: add a Labels layer like the CT, no widget open"
    with meter.action(floor):  # what any result layer costs in napari itself (vispy visuals, overlays, events)
        extra = s.viewer.add_labels(np.zeros(s.viewer.layers[image].data.shape, np.uint8), name="floor",
                                    scale=s.viewer.layers[image].scale, translate=s.viewer.layers[image].translate)
        wait_until(lambda: True, 5, "add", settle=0.5)
    s.viewer.layers.remove(extra)
    s.outcomes[floor] = "ok"
    with meter.action("Viewer: scroll 3 s, nothing running"):
        s.scrolling(True)
        end = time.perf_counter() + 3
        wait_until(lambda: time.perf_counter() > end, 10, "scroll", settle=0)
        s.scrolling(False)
    s.outcomes["Viewer: scroll 3 s, nothing running"] = "ok"

    ft = s.widget("Fine-tune")
    picks = paint(s, image, truth)
    s.viewer.dims.set_current_step(0, picks[1])

    ft.image_combo.set_layer(image)
    ft.labels_combo.set_layer("annotation")
    ft.memory_check.setChecked(True)  # the bank: Clusters needs it
    ft.steps_spin.setValue(0)
    ft.budget_spin.setValue(budget)
    ft.device_combo.setCurrentText("cpu")
    ft.save_edit.setText(str(tmp / "finetuned.safetensors"))
    s.run_job(f"Fine-tune: Start ({budget:.0f} s, bank on, fill the volume)", ft, ft.run_button.click,
              budget + 600, scroll_when=lambda: len(ft.plot.steps) > 0)
    correct(s, ft, truth)
    saved = getattr(ft.last_result, "path", None)
    if saved is None or not Path(saved).is_file():
        # a busy CPU can spend the whole budget on propagation: then no network was trained. Segment and
        # Clusters need one: Start again with the network alone, as a user would
        ft.fill_check.setChecked(False)
        ft.budget_spin.setValue(max(20.0, budget / 2))
        ft.save_edit.setText(str(tmp / "network.safetensors"))
        s.run_job(f"Fine-tune: Start again, network alone ({max(20.0, budget / 2):.0f} s)", ft, ft.run_button.click,
                  budget + 600)
        saved = getattr(ft.last_result, "path", None)

    def pick_model(picker: Any) -> None:
        # the session's model when Fine-tune added one (the picker selects it), else the file it saved
        if picker.combo.currentText() == "checkpoint file..." and saved is not None and Path(saved).is_file():
            picker.set_path(saved)

    seg = s.widget("Segment")
    seg.image_combo.set_layer(image)
    seg.device_combo.setCurrentText("cpu")
    pick_model(seg.model_picker)
    s.run_job("Segment: run (the fine-tuned model)", seg, seg.run_button.click, 600)

    start = seg.result_layer if seg.result_layer is not None else ft.result_layer
    if start is not None:  # Correct: one slice between two painted ones repainted from the ground truth
        z = (picks[0] + picks[1]) // 2
        truth_data = np.asarray(s.viewer.layers[truth].data)
        fixes = np.zeros(truth_data.shape, truth_data.dtype)
        fixes[z] = truth_data[z]
        s.viewer.add_labels(fixes, name="fixes", scale=s.viewer.layers[image].scale,
                            translate=s.viewer.layers[image].translate)  # fmt: skip
        cor = s.widget("Correct")
        cor.image_combo.set_layer(image)
        cor.segmentation_combo.set_layer(start.name)
        cor.corrections_combo.set_layer("fixes")
        s.run_job(f"Correct: run (slice {z} repainted over '{start.name}')", cor, cor.run_button.click, 600)

    clu = s.widget("Clusters")
    clu.image_combo.set_layer(image)
    clu.labels_combo.set_layer(truth)
    clu.device_combo.setCurrentText("cpu")
    pick_model(clu.model_picker)
    s.viewer.dims.set_current_step(0, picks[1])
    s.run_job("Clusters: show clusters (slice on screen, vs ground truth)", clu, clu.run_button.click, 600)

    met = s.widget("Metrics")
    pred = seg.result_layer if seg.result_layer is not None else ft.result_layer  # or Fine-tune's filling
    if pred is not None:
        met.pred_combo.set_layer(pred)
    met.gt_combo.set_layer(truth)
    s.run_job("Metrics: compute (table + chart)", met, met.run_button.click, 600)
    if met.slice_class_combo.count():
        met.slice_class_combo.setCurrentIndex(min(1, met.slice_class_combo.count() - 1))
        s.run_job("Metrics: Dice per slice", met, met.slice_button.click, 300)

    pre = s.widget("Pre-train")
    for i in range(pre.layer_list.count()):  # the CT only
        item = pre.layer_list.item(i)
        item.setCheckState(item.checkState().Checked if item.text() == image else item.checkState().Unchecked)
    pre.budget.setValue(pretrain_budget)
    pre.out.setText(str(tmp / "pretrained.safetensors"))
    s.run_job(f"Pre-train: Start ({pretrain_budget:.0f} s)", pre, pre.run_button.click, pretrain_budget + 600)

    view = s.widget("View")
    s.viewer.layers.selection.active = s.viewer.layers[image]
    with meter.action("View: every window preset"):
        for i in range(1, view.window_combo.count()):
            view.window_combo.setCurrentIndex(i)
            view.window_combo.activated.emit(i)
            wait_until(lambda: True, 5, "window", settle=0.3)
    s.outcomes["View: every window preset"] = "ok"
    with meter.action("View: neurological, then radiological"):
        for convention in ("neurological", "radiological"):
            view.convention_combo.setCurrentText(convention)
            wait_until(lambda: True, 5, "convention", settle=0.3)
    s.outcomes["View: neurological, then radiological"] = "ok"
    meter.stop()
    s.viewer.close()
    return meter.actions, s.outcomes, note


def table(actions: list[Any], outcomes: dict[str, str]) -> list[str]:
    rows = ["| widget | action | took | longest stall | p99 stall | stalls > 200 ms | outcome | main thread during the "
            "longest stalls (sampled) |", "|---|---|---|---|---|---|---|---|"]
    for a in actions:
        widget, _, what = a.name.partition(": ")
        flag = " **over**" if a.longest_ms > LIMIT_MS else ""
        cause = f"`{a.cause()}`" if a.longest_ms > LIMIT_MS and a.cause() else ""
        outcome = outcomes.get(a.name, "").replace("|", "/")[:90]
        rows.append(f"| {widget} | {what} | {a.seconds:.1f} s | {a.longest_ms:.0f} ms{flag} | {a.p99_ms:.0f} ms | "
                    f"{a.over(LIMIT_MS)} | {outcome} | {cause} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of Fine-tune (propagation, then the network)")
    ap.add_argument("--pretrain-budget", type=float, default=5.0, help="seconds of pre-training (the widget's least)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    load_before = load_line()
    t0 = time.perf_counter()
    actions, outcomes, note = run(args.budget, args.pretrain_budget)
    minutes = (time.perf_counter() - t0) / 60
    rows = table(actions, outcomes)
    print("\n".join(rows), flush=True)
    worst = max(actions, key=lambda a: a.longest_ms)
    print(f"worst: {worst.name} {worst.longest_ms:.0f} ms; run took {minutes:.1f} min", flush=True)
    if args.no_write:
        return
    over = [a for a in actions if a.longest_ms > LIMIT_MS]
    lines = [
        f"Every widget of the plugin in a real napari viewer (Xvfb, xcb, llvmpipe), opened from the Plugins menu "
        f"and used as a user does, on {note}: four painted slices, Fine-tune with the memory bank for "
        f"{args.budget:.0f} s (filling the volume; Start again with the network alone when propagation used the "
        "whole budget, so that Segment and Clusters have a model), Segment, Correct (one slice repainted over "
        "its result), Clusters on the slice on screen, Metrics with its "
        f"chart and Dice per slice, Pre-train for {args.pretrain_budget:.0f} s, the View panel. While Fine-tune "
        "trains, a timer scrolls one slice every 100 ms for 3 s (its own row: the canvas redrawn under load); a "
        "10 ms main-thread timer records the event loop's gaps (a gap is how long a click or a scroll would "
        "have waited). The last column names the code "
        "a watchdog thread found on top of the main thread's stack while it was silent for over 100 ms "
        "(most frequent sample during its longest stall). The limit is 200 ms.",
        "",
        *rows,
        "",
        f"{len(over)} of {len(actions)} actions stalled over {LIMIT_MS:.0f} ms; the longest: {worst.name}, "
        f"{worst.longest_ms:.0f} ms. The whole run took {minutes:.1f} min.",
        "",
        "Read the stalls against the machine's load in the stamp above: on 2 cores shared with other busy "
        "processes the viewer's thread waits for a core, so every number is several times what an idle machine "
        "shows (compare the 'napari alone' row, napari's own cost of adding a layer, and 'scroll ... nothing "
        "running', the canvas's cost of one slice change). A row whose sampled cause is napari, vispy or Qt in "
        "C++ is the viewer's own work; a row naming a napari_smp file is the plugin's to fix.",
    ]
    write_section(SECTION, "\n".join(lines), packages=("torch", "napari", "PyQt6"),
                  script='xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/viewer_stalls.py',
                  extra={"load": f"{load_before} at the start, {load_line()} at the end"})


if __name__ == "__main__":
    main()
