"""The pre-training widget: lists 3D image layers, refuses an empty selection, runs, plots, saves."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smp.config import MemoryConfig, ModelConfig

pytestmark = pytest.mark.gui


def _tiny() -> ModelConfig:
    return ModelConfig(
        preset="lite",
        img_size=32,
        lite_width=8,
        lite_depths=(1, 1, 1, 1),
        lite_memory_stages=(1, 2, 3, 4),  # DMW-LA at every stage, so every module kind is exercised
        memory=MemoryConfig(slots=8, dim=16, decoder_dim=16, warmup_steps=3),
    )


def _volume(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = rng.normal(0, 1, (6, 32, 32)).astype(np.float32)
    vol[:, 8:20, 10:24] += 3.0
    return vol


@pytest.fixture
def widget(make_napari_viewer, qtbot, tmp_path):
    from napari_smp._widgets.pretrain import PretrainWidget

    viewer = make_napari_viewer()
    viewer.add_image(_volume(0), name="scan a")
    viewer.add_image(np.zeros((16, 16), np.float32), name="a 2D picture")  # not a volume: not listed
    w = PretrainWidget(viewer)
    w.config = _tiny()
    w.out.setText(str(tmp_path / "enc.safetensors"))
    qtbot.addWidget(w)
    return w


def test_lists_only_volumes_and_follows_the_layer_list(widget):
    assert [widget.layer_list.item(i).text() for i in range(widget.layer_list.count())] == ["scan a"]
    widget.viewer.add_image(_volume(1), name="scan b")
    assert widget.layer_list.count() == 2 and len(widget.selected_layers()) == 2


def test_refuses_to_start_without_volumes(widget):
    from qtpy.QtCore import Qt

    widget.layer_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert widget.start() is None
    assert widget.job is None and "at least one" in widget.status.text()


def test_runs_plots_the_loss_and_saves_a_pretrained_checkpoint(widget, qtbot, tmp_path):
    from napari_smp.engine.checkpoint import is_pretrained_checkpoint

    widget.steps.setValue(3)
    job = widget.start()
    assert not widget.run_button.isEnabled()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=120_000)
    assert widget.status.text().startswith("saved enc.safetensors: 3 steps"), widget.status.text()
    assert widget.plot.steps == [1, 2, 3] and all(np.isfinite(widget.plot.losses))
    assert is_pretrained_checkpoint(tmp_path / "enc.safetensors")


def test_cancel_saves_nothing(widget, qtbot, tmp_path):
    widget.steps.setValue(100_000)
    job = widget.start()
    qtbot.waitUntil(lambda: len(widget.plot.steps) > 0, timeout=120_000)
    widget.cancel_button.click()
    qtbot.waitUntil(lambda: not job.running, timeout=60_000)
    assert "cancelled" in widget.status.text() and not list(tmp_path.iterdir())


def test_an_existing_file_is_never_overwritten(widget, qtbot, tmp_path):
    (tmp_path / "enc.safetensors").write_bytes(b"keep me")
    widget.steps.setValue(2)
    job = widget.start()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=120_000)
    assert widget.status.text().startswith("saved enc-2.safetensors: 2 steps"), widget.status.text()
    assert (tmp_path / "enc.safetensors").read_bytes() == b"keep me"
