import numpy as np
import pytest
import torch
from tiny import tiny_config

from napari_smp.config import InferConfig
from napari_smp.engine.errors import Cancelled
from napari_smp.engine.inference.predictor import Predictor
from napari_smp.model import build_model


@pytest.fixture
def predictor():
    torch.manual_seed(0)
    return Predictor(
        build_model(tiny_config()), tiny_config(), InferConfig(device="cpu", batch_size=4, amp=False)
    )


def test_prediction_is_on_the_input_grid(predictor, toy):
    image, _ = toy
    out = predictor.predict(image[:, :, :33], (2.0, 1.0, 1.0), probabilities=True)
    assert out.labels.shape == (10, 40, 33) and out.labels.dtype == np.uint8
    assert out.labels.max() < 3
    assert out.probabilities.shape == (3, 10, 40, 33) and out.probabilities.dtype == np.float16
    np.testing.assert_allclose(out.probabilities.astype(np.float32).sum(0), 1.0, atol=5e-3)
    np.testing.assert_array_equal(out.probabilities.argmax(0), out.labels)


def test_prediction_is_deterministic_and_batch_size_independent(predictor, toy):
    image, _ = toy
    a = predictor.predict(image).labels
    b = predictor.predict(image).labels
    predictor.infer.batch_size = 1
    c = predictor.predict(image).labels
    predictor.infer.batch_size = 7
    d = predictor.predict(image).labels
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, d)


def test_prediction_does_not_depend_on_slice_order(predictor, toy):
    image, _ = toy
    forward = predictor.predict(image).labels
    backward = predictor.predict(image[::-1].copy()).labels[::-1]
    np.testing.assert_array_equal(forward, backward)


def test_progress_and_cancel(predictor, toy):
    image, _ = toy
    seen = []
    predictor.predict(image, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    calls = iter([False, True])
    with pytest.raises(Cancelled):
        predictor.predict(image, cancel=lambda: next(calls))


def test_cluster_maps_at_image_resolution(predictor, toy):
    image, _ = toy
    name = predictor.memory_modules()[0]
    maps = predictor.clusters(image, name, slices=[2, 5])
    assert maps.assignment.shape == (2, 40, 40)
    k = maps.similarity.shape[0]
    assert maps.similarity.shape == (k, 2, 40, 40)
    assert maps.assignment.min() >= 0 and maps.assignment.max() < k
    assert maps.slices.tolist() == [2, 5] and maps.stride >= 1
