"""The clusters of a fine-tuned tiny model: image-grid maps, body, boxes, purity splits, K history."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import tiny_config, toy_volume

from napari_smp.config import TrainConfig
from napari_smp.engine.checkpoint import read_checkpoint_info
from napari_smp.engine.inference.cluster_report import cluster_report
from napari_smp.engine.inference.predictor import Predictor
from napari_smp.engine.k_history import read_k_history
from napari_smp.engine.training.finetune import finetune


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    image, labels = toy_volume(depth=8, size=32)
    image = image.copy()
    image[:, :, :3] = -5.0  # three columns of "air" beside the body
    paint = np.zeros_like(labels)
    paint[[2, 5]] = labels[[2, 5]]
    out = tmp_path_factory.mktemp("ck") / "m.safetensors"
    res = finetune(image, paint, config=tiny_config(warmup=2),
                   train=TrainConfig(steps=6, batch_size=2, augment=False, amp=False), out=out)
    return image, labels, out, res


def test_checkpoint_keeps_k_over_training(trained):
    _, _, out, res = trained
    hist = read_k_history(read_checkpoint_info(out)["extra"])
    assert hist is not None and [s for s, _ in hist] == list(range(1, len(res.reports) + 1))
    assert [k for _, k in hist] == [r.k for r in res.reports]


def test_report_on_the_image_grid_with_purity_splits(trained):
    image, labels, out, _ = trained
    pred = Predictor.from_checkpoint(out)
    module = pred.memory_modules()[0]
    rep = cluster_report(pred, image, module, range(1, 7), labels[1:7], painted=[2, 5])
    k = rep.k
    assert rep.similarity.shape == (k, 6, 32, 32) and rep.similarity.dtype == np.float16
    np.testing.assert_array_equal(rep.assignment, rep.similarity.argmax(0))
    # the air columns are outside the body, the rest inside
    assert not rep.body[:, :, :3].any() and rep.body[:, :, 4:].all()
    assert rep.counts().sum() == rep.body.sum()
    assert set(rep.purity) == {"all", "painted", "never painted"}
    assert rep.tied  # the lite bank is seeded from the painted classes
    t = rep.purity["never painted"]
    assert t.counts.sum() == rep.body[[0, 2, 3, 5]].sum()  # slices 1, 3, 4, 6
    for b in rep.boxes:  # every box lies inside the body's columns and on a shown slice
        assert b.x0 >= 3 and 1 <= b.slice <= 6 and b.y1 > b.y0 and b.x1 > b.x0
    header, rows = rep.rows()
    assert header[:3] == ["cluster", "class", "purity"] and "share background" in header
    assert len(rows) == k and rows[0][1] == "background"
    shares = [float(v) for v in rows[1][3 : 3 + len(rep.classes)] if v != ""]
    assert not shares or abs(sum(shares) - 1) < 3e-4  # rounded to 4 decimals in the table


def test_a_model_without_a_bank_and_bad_labels_are_refused(trained):
    image, labels, out, _ = trained
    pred = Predictor.from_checkpoint(out)
    with pytest.raises(ValueError, match="no DMW-LA module named"):
        cluster_report(pred, image, "encoder.nowhere")
    with pytest.raises(ValueError, match="do not match"):
        cluster_report(pred, image, pred.memory_modules()[0], range(0, 2), labels[:3])
