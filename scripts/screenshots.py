"""Take the user guide's screenshots in a real napari window: Fine-tune -> Segment -> Clusters -> Metrics.

Run it under a display (on a headless machine: ``xvfb-run -a -s "-screen 0 1600x1000x24" python
scripts/screenshots.py``). It opens the abdominal phantom with a sparse annotation of four slices,
drives the four widgets by setting their controls and pressing their buttons, waits for each worker,
and writes ``docs/images/<widget>.png`` (scaled down to stay under 200 KB).

Usage: python scripts/screenshots.py [--out docs/images] [--budget 45]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["main"]

WIDTH = 1280  # width of the saved PNGs, px
LIMIT = 200_000  # bytes per PNG


def _wait(app, done: Callable[[], bool], timeout: float, widget=None) -> None:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"a widget did not finish in time: {widget.status.text() if widget else ''}")
        app.processEvents()
        time.sleep(0.02)


def _settle(app, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _save(viewer, app, path: Path) -> None:
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
    print(f"{path}: {small.width}x{small.height}, {path.stat().st_size // 1024} KB")


def _show(widget) -> None:
    """Bring the tab holding ``widget`` to the front."""
    from qtpy.QtWidgets import QDockWidget

    dock = widget.parent()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parent()
    if dock is not None:
        dock.raise_()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images", type=Path)
    parser.add_argument("--budget", default=120.0, type=float, help="fine-tune time budget, seconds")
    parser.add_argument("--full", action="store_true",
                        help="fine-tune the default lite model (128 px) instead of a small one (64 px, width 16) "
                             "that gives a readable curve within the budget on a 2-core CPU")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_smp._napari_io import phantom_sample
    from napari_smp._widgets.demo_viewer import dock_widgets
    from napari_smp.engine.demo import sparse_annotation

    viewer = napari.Viewer(title="napari-smp", show=True)
    viewer.window.resize(1500, 940)
    app = QApplication.instance()
    (image, image_kw, _), (labels, labels_kw, _) = phantom_sample()
    viewer.add_image(image, **{**image_kw, "name": "image"})
    viewer.add_labels(labels, **{**labels_kw, "name": "ground truth", "visible": False})
    sparse, painted = sparse_annotation(labels)
    viewer.add_labels(sparse, **{**labels_kw, "name": "annotation", "opacity": 0.7})
    viewer.dims.set_point(0, viewer.layers["image"].data_to_world((painted[1], 0, 0))[0])
    w = dock_widgets(viewer)
    ft, seg, clu, met = w["Fine-tune"], w["Segment"], w["Clusters"], w["Metrics"]
    tmp = Path(tempfile.mkdtemp(prefix="napari-smp-shots-"))

    # 1. Fine-tune on the four painted slices, then segment at once
    if not args.full:
        from napari_smp.config import ModelConfig, NormConfig, TrainConfig

        ft.model_config_override = ModelConfig(img_size=64, lite_width=16, norm=NormConfig(mode="ct"))
        ft.train_config_override = TrainConfig(batch_size=4)
    ft.steps_spin.setValue(80)  # the bank warms up for a tenth of the steps; warm-up steps are the slow ones
    ft.budget_spin.setValue(args.budget)
    ft.save_edit.setText(str(tmp / "phantom-finetuned.safetensors"))
    ft.fill_check.setChecked(False)  # the model alone: Segment runs next
    _show(ft)
    ft.run_button.click()
    _wait(app, lambda: len(ft.plot.steps) > 12 or not ft.busy(), args.budget + 300, ft)
    _save(viewer, app, args.out / "finetune.png")  # mid-run: curves growing, Cancel enabled
    _wait(app, lambda: ft.last_result is not None, args.budget + 300, ft)
    ft.plot.flush()

    # 2. Segment with the model just fine-tuned (the picker selected it)
    _show(seg)
    seg.run_button.click()
    _wait(app, lambda: seg.result_layer is not None, 300)
    viewer.layers["annotation"].visible = False
    _save(viewer, app, args.out / "segment.png")

    # 3. Clusters of the last decoder module on the slice on screen, compared with the ground truth
    _show(clu)
    seg.result_layer.visible = False
    clu.model_picker.select(seg.model_picker.combo.currentText())
    clu.run_button.click()  # loads the model; no module chosen yet -> the last one (decoder.stage1)
    _wait(app, lambda: bool(clu.layers), 300)
    viewer.layers.selection.active = viewer.layers[f"clusters {clu.module_combo.currentText()}"]
    _save(viewer, app, args.out / "clusters.png")

    # 4. Metrics of the segmentation against the ground truth, and Dice per slice of the liver
    _show(met)
    for layer in clu.layers:
        layer.visible = False
    seg.result_layer.visible = True
    met.pred_combo.set_layer(seg.result_layer)
    met.gt_combo.set_layer("ground truth")
    met.run_button.click()
    _wait(app, lambda: met.report is not None, 300)
    _save(viewer, app, args.out / "metrics.png")
    met.slice_class_combo.setCurrentText("liver")
    met.slice_button.click()
    _wait(app, lambda: met.slice_dice is not None, 60)
    _save(viewer, app, args.out / "metrics_per_slice.png")
    viewer.close()


if __name__ == "__main__":
    main()
