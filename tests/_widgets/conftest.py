"""Fixtures for the widget tests: a viewer with a tiny volume, a tiny checkpoint, a tick monitor."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import NAMES, ORIGIN, SPACING, TickMonitor, tiny_config, tiny_train, tiny_volume


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny model fine-tuned for a few steps and saved: what a user would pick as a checkpoint file."""
    from napari_smp.engine.checkpoint import save_checkpoint
    from napari_smp.engine.training.finetune import finetune

    image, labels = tiny_volume()
    res = finetune(image, labels, config=tiny_config(), train=tiny_train(steps=6))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", res.model, res.config)


@pytest.fixture(autouse=True)
def _fresh_session():
    from napari_smp._widgets._session import SESSION

    SESSION.clear()
    yield
    SESSION.clear()


@pytest.fixture
def viewer_with_volume(make_napari_viewer):
    """A viewer holding a tiny image with physical geometry and VolumeMeta, and its sparse annotation."""
    from napari_smp.io.meta import META_KEY, VolumeMeta

    viewer = make_napari_viewer()
    image, labels = tiny_volume()
    affine = np.eye(4)
    affine[:3, :3] = np.diag(SPACING)
    affine[:3, 3] = ORIGIN
    meta = VolumeMeta(spacing=SPACING, affine=affine, source_affine=affine, source_shape=image.shape[::-1],
                      path="/data/case1.nii.gz")
    viewer.add_image(image, name="ct", scale=SPACING, translate=ORIGIN, metadata={META_KEY: meta})
    sparse = np.zeros_like(labels)
    sparse[[1, 4]] = labels[[1, 4]]
    viewer.add_labels(sparse, name="annotation", scale=SPACING, translate=ORIGIN)
    viewer.add_labels(labels.copy(), name="ground truth", scale=SPACING, translate=ORIGIN,
                      metadata={"class_names": dict(enumerate(NAMES))})
    return viewer


@pytest.fixture
def tick_monitor():
    mon = TickMonitor()
    yield mon
    mon.timer.stop()
