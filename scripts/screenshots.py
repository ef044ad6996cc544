"""Take the user guide's screenshots in a real napari window: Fine-tune -> Segment -> Clusters -> Metrics.

Run it under a display (on a headless machine: ``xvfb-run -a -s "-screen 0 1600x1000x24" python
scripts/screenshots.py``). It opens the dev CT as a user would (File > Open: the TotalSegmentator
example DICOM series, 20 x 512 x 512, fetched by ``scripts/fetch_data.py``, and its 8-organ label map
as the ground truth), in the radiological view with the soft-tissue window (W 400 / L 40), paints four
slices from the ground truth, drives the widgets by setting their controls and pressing their buttons,
waits for each worker, and writes ``docs/images/<widget>.png`` (scaled down to stay under 200 KB).
When the dev CT cannot be fetched (offline) it falls back to the phantom and says so.

Usage: python scripts/screenshots.py [--out docs/images] [--budget 240]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

WIDTH = 1280  # width of the saved PNGs, px
LIMIT = 200_000  # bytes per PNG
PLUGIN = "napari-smp"


def _wait(app: Any, done: Callable[[], bool], timeout: float, widget: Any = None) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"a widget did not finish in time: {widget.status.text() if widget else ''}")
        app.processEvents()
        time.sleep(0.02)


def _settle(app: Any, seconds: float = 1.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _save(viewer: Any, app: Any, path: Path) -> None:
    """Grab the whole window (canvas and docks) and save a PNG of at most ``LIMIT`` bytes."""
    from PIL import Image

    _settle(app)
    rgba = viewer.window.screenshot(canvas_only=False, flash=False)
    image = Image.fromarray(rgba[..., :3])
    width = WIDTH
    while True:
        small = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        # a 128-colour palette keeps the UI crisp at a third of the size of true colour
        small.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        if path.stat().st_size < LIMIT or width < 700:
            break
        width -= 120
    print(f"{path}: {small.width}x{small.height}, {path.stat().st_size // 1024} KB", flush=True)


def _close_toasts(app: Any) -> None:
    """Close napari's notification pop-ups: one left from the previous step would cover the next picture."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for w in app.allWidgets():
        if isinstance(w, NapariQtNotification):
            w.close()
    _settle(app, 0.5)


def _show(widget: Any) -> None:
    """Bring the tab holding ``widget`` to the front."""
    from qtpy.QtWidgets import QDockWidget

    dock = widget.parent()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parent()
    if dock is not None:
        dock.raise_()


def _open_data(viewer: Any) -> tuple[Any, Any, str]:
    """The dev CT and its labels opened through the plugin's reader (File > Open); the phantom offline."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fetch_data

    try:
        folder = fetch_data.fetch_dev_ct()
        dicom = folder / "example_ct_dicom"
        ct = viewer.open(str(dicom if dicom.is_dir() else folder / fetch_data.DEV_CT_IMAGE), plugin=PLUGIN)[0]
        truth = viewer.open(str(folder / fetch_data.DEV_CT_LABELS), plugin=PLUGIN)[0]
        ct.name = "abdominal CT"
        return ct, truth, "the dev CT"
    except Exception as err:  # offline or refused: the phantom shows the same widgets
        print(f"the dev CT could not be fetched ({err}); the screenshots show the phantom instead", flush=True)
        from napari_smp._napari_io import phantom_sample

        (image, image_kw, _), (labels, labels_kw, _) = phantom_sample()
        ct = viewer.add_image(image, **{**image_kw, "name": "phantom CT"})
        truth = viewer.add_labels(labels, **labels_kw)
        return ct, truth, "the phantom"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images", type=Path)
    parser.add_argument("--budget", default=240.0, type=float,
                        help="Fine-tune's time budget, seconds (propagation, then the network for the rest)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import sys
    import traceback

    import napari
    from qtpy.QtWidgets import QApplication

    # a bug in a widget's slot is printed, not a reason for Qt to abort the whole run
    sys.excepthook = lambda *exc: traceback.print_exception(*exc)

    from napari_smp._widgets._layers import apply_window, class_names_of, derived_layer_kwargs
    from napari_smp._widgets.demo_viewer import dock_widgets
    from napari_smp.engine.demo import sparse_annotation

    viewer = napari.Viewer(title="napari-smp", show=True)
    viewer.window.resize(1500, 940)
    app = QApplication.instance()
    ct, truth, what = _open_data(viewer)
    truth.name, truth.visible = "ground truth", False
    apply_window(ct, "abdomen")  # soft tissue, W 400 / L 40 (what the reader chose for a CT; said here)
    names = class_names_of(truth)
    sparse, painted = sparse_annotation(np.asarray(truth.data), 4)
    painting = viewer.add_labels(sparse, name="painting", opacity=0.7, **derived_layer_kwargs(ct, class_names=names))
    w = dock_widgets(viewer)  # the widgets turn the radiological view on for a volume read by napari-smp
    ft, seg, clu, met = w["Fine-tune"], w["Segment"], w["Clusters"], w["Metrics"]
    for combo in (ft.image_combo, seg.image_combo, clu.image_combo):
        combo.set_layer(ct)
    ft.labels_combo.set_layer(painting)
    met.gt_combo.set_layer(truth)
    clu.labels_combo.set_layer(truth)
    shown = painted[len(painted) // 2]
    viewer.dims.set_current_step(0, shown)
    viewer.layers.selection.active = painting
    tmp = Path(tempfile.mkdtemp(prefix="napari-smp-shots-"))
    print(f"{what}: painted slices {painted}, showing slice {shown}", flush=True)

    # 1. Fine-tune on the painted slices: the volume is filled (propagation first, then the network)
    ft.memory_check.setChecked(True)  # the memory bank, so that Clusters has something to show
    ft.budget_spin.setValue(args.budget)
    ft.save_edit.setText(str(tmp / "dev-ct-finetuned.safetensors"))
    _show(ft)
    ft.run_button.click()
    _wait(app, lambda: len(ft.plot.steps) > 15 or not ft.busy(), args.budget + 600, ft)
    _save(viewer, app, args.out / "finetune.png")  # mid-run: curves growing, Cancel enabled
    _wait(app, lambda: ft.last_result is not None and not ft.busy(), args.budget + 600, ft)
    ft.plot.finish()
    filled = ft.result_layer
    print(f"Fine-tune: {ft.status.text()}", flush=True)
    saved = getattr(ft.last_result, "path", None)
    train = getattr(ft.last_result, "train", None)
    if saved is None or not Path(saved).is_file() or train is None or len(train.reports) < 60:
        # a busy CPU can spend most of the budget on propagation, and the status says the network learnt
        # too little: train the network alone, as a user would, so that Segment and Clusters show a model
        ft.fill_check.setChecked(False)
        ft.budget_spin.setValue(args.budget * 0.75)
        ft.save_edit.setText(str(tmp / "dev-ct-network.safetensors"))
        ft.run_button.click()
        _wait(app, lambda: ft.last_result is not None and not ft.busy() and getattr(ft.last_result, "path", None),
              args.budget + 600, ft)
        saved = ft.last_result.path
        print(f"Fine-tune, network alone: {ft.status.text()}", flush=True)

    # 2. Segment with the model just fine-tuned (the picker selected it; else the file it saved)
    _close_toasts(app)
    _show(seg)
    if seg.model_picker.combo.currentText() == "checkpoint file..." and saved is not None:
        seg.model_picker.set_path(saved)
        clu.model_picker.set_path(saved)
    painting.visible = False
    if filled is not None:
        filled.visible = False
    seg.run_button.click()
    _wait(app, lambda: seg.result_layer is not None or not seg.busy(), 600, seg)
    _save(viewer, app, args.out / "segment.png")

    # 2b. Correct Segment's result: one slice between two painted ones repainted from the ground truth
    if seg.result_layer is not None:
        _close_toasts(app)
        fix_z = (painted[0] + painted[1]) // 2
        truth_data = np.asarray(truth.data)
        fixes_data = np.zeros_like(truth_data)
        fixes_data[fix_z] = truth_data[fix_z]
        fixes = viewer.add_labels(fixes_data, name="my corrections", **derived_layer_kwargs(ct, class_names=names))
        _, cor = viewer.window.add_plugin_dock_widget("napari-smp", "Correct", tabify=True)
        cor.image_combo.set_layer(ct)
        cor.segmentation_combo.set_layer(seg.result_layer)
        cor.corrections_combo.set_layer(fixes)
        _show(cor)
        cor.run_button.click()
        _wait(app, lambda: cor.result_layer is not None or not cor.busy(), 600, cor)
        fixes.visible = seg.result_layer.visible = False
        viewer.dims.set_current_step(0, fix_z + 1)  # a neighbour of the repainted slice: the carried fix
        _save(viewer, app, args.out / "correct.png")
        print(f"Correct: {cor.status.text()}", flush=True)
        if cor.result_layer is not None:
            cor.result_layer.visible = False
        viewer.dims.set_current_step(0, shown)

    # 3. Clusters of the last memory module on the slice on screen, compared with the ground truth
    _close_toasts(app)
    _show(clu)
    if seg.result_layer is not None:
        seg.result_layer.visible = False
    clu.run_button.click()
    _wait(app, lambda: bool(clu.layers) or not clu.busy(), 600, clu)
    labels_layers = [ly for ly in clu.layers if type(ly).__name__ == "Labels"]
    if labels_layers:
        viewer.layers.selection.active = labels_layers[0]
    _save(viewer, app, args.out / "clusters.png")

    # 4. Metrics of Fine-tune's filled volume against the ground truth, and the liver's Dice per slice
    _close_toasts(app)
    _show(met)
    for layer in list(clu.layers):  # removed, not hidden: the stacked cluster maps add a slider of their own
        if layer in viewer.layers:
            viewer.layers.remove(layer)
    view_dock = getattr(viewer.window, "_wrapped_dock_widgets", {}).get("View")
    if view_dock is not None:  # room for the table and both charts
        view_dock.hide()
    scored = filled if filled is not None else seg.result_layer
    scored.visible = True
    viewer.layers.selection.active = scored
    met.pred_combo.set_layer(scored)
    met.run_button.click()
    _wait(app, lambda: met.report is not None or not met.busy(), 600, met)
    _settle(app, 2.0)  # the chart arrives from the plot thread
    _save(viewer, app, args.out / "metrics.png")
    met.slice_class_combo.setCurrentText("liver")
    met.slice_button.click()
    _wait(app, lambda: met.slice_dice is not None or not met.busy(), 120, met)
    _settle(app, 2.0)
    from qtpy.QtWidgets import QScrollArea

    area = met.parent()  # napari puts a tall dock widget in a scroll area: show its end, where the line is
    while area is not None and not isinstance(area, QScrollArea):
        area = area.parent()
    if area is not None:
        area.verticalScrollBar().setValue(area.verticalScrollBar().maximum())
        _settle(app, 1.0)
    _save(viewer, app, args.out / "metrics_per_slice.png")
    viewer.close()


if __name__ == "__main__":
    main()
