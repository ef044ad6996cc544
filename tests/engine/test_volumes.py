import numpy as np
import pytest
import torch

from napari_smp.config import NormConfig
from napari_smp.engine.errors import EngineError
from napari_smp.engine.slices import resize_labels, resize_slices, resize_soft_labels
from napari_smp.engine.training.augment import augment_batch
from napari_smp.engine.volumes import annotated_slices, check_image, check_labels, guess_norm, normalize_volume


def test_ct_window_maps_to_unit_range():
    vol = np.array([[[-1000.0, -125.0, 75.0, 275.0, 3000.0]]])
    out = normalize_volume(vol, NormConfig(mode="ct"))
    np.testing.assert_allclose(out[0, 0], [0.0, 0.0, 0.5, 1.0, 1.0])


def test_percentile_norm_is_robust_to_outliers():
    rng = np.random.default_rng(0)
    vol = rng.normal(100, 10, (8, 32, 32)).astype(np.float32)
    vol[0, 0, 0] = 1e6  # one hot pixel must not squash the rest
    out = normalize_volume(vol, NormConfig(mode="percentile"))
    assert out.min() == 0 and out.max() == 1
    assert 0.3 < np.median(out) < 0.7


def test_guess_norm_tells_ct_from_mr():
    ct = np.full((4, 16, 16), -1000.0)
    ct[:, 4:12, 4:12] = 50
    assert guess_norm(ct).mode == "ct"
    assert guess_norm(np.random.default_rng(0).uniform(0, 800, (4, 16, 16))).mode == "percentile"


def test_annotated_slices_rule():
    lab = np.zeros((6, 4, 4), np.uint8)
    lab[1, 0, 0] = 2
    lab[4, 3, 3] = 1
    assert annotated_slices(lab).tolist() == [1, 4]
    assert annotated_slices(lab, extra=[0, 4]).tolist() == [0, 1, 4]
    with pytest.raises(EngineError, match="outside"):
        annotated_slices(lab, extra=[9])


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.full((2, 3, 3), 0.5), "fractional"),
        (np.full((2, 3, 3), -1), "negative"),
        (np.full((2, 3, 3), np.nan), "NaN"),
        (np.zeros((3, 3)), "3D"),
        (np.zeros((2, 3, 4)), "shape"),
    ],
)
def test_bad_labels_are_refused(labels, match):
    with pytest.raises(EngineError, match=match):
        check_labels(labels, shape=(2, 3, 3))


def test_integer_valued_float_labels_are_accepted():
    out = check_labels(np.array([[[0.0, 2.0]]]))
    assert out.dtype == np.int64 and out.tolist() == [[[0, 2]]]


def test_bad_images_are_refused():
    with pytest.raises(EngineError, match="3D"):
        check_image(np.zeros((4, 4)))
    vol = np.zeros((2, 4, 4), np.float32)
    vol[0, 0, 0] = np.nan
    with pytest.raises(EngineError, match="1 NaN"):
        check_image(vol)


def test_resizing_keeps_label_values_and_shapes():
    lab = torch.randint(0, 5, (3, 37, 51))
    small = resize_labels(lab, 16)
    assert small.shape == (3, 16, 16) and set(small.unique().tolist()) <= set(lab.unique().tolist())
    img = torch.rand(3, 1, 37, 51)
    assert resize_slices(img, (64, 64)).shape == (3, 1, 64, 64)
    assert resize_slices(img, (37, 51)) is img


def test_soft_labels_keep_a_thin_structure_that_nearest_drops():
    # a 2-pixel stripe at columns 256-257 of a 512 slice: nearest neighbour to 128 samples columns
    # 4k + 2 only and misses it entirely; the class fractions keep its area (2 x 512 / 16 = 64 model
    # pixels' worth) and each model pixel's fractions sum to 1
    lab = torch.zeros(1, 512, 512, dtype=torch.long)
    lab[0, :, 256:258] = 1
    nearest = resize_labels(lab, 128)
    soft = resize_soft_labels(lab, 2, 128)
    assert soft.shape == (1, 2, 128, 128) and soft.dtype == torch.float32
    assert int(nearest.sum()) == 0
    assert float(soft[:, 1].sum()) == pytest.approx(64.0, rel=1e-4)
    torch.testing.assert_close(soft.sum(1), torch.ones(1, 128, 128))
    assert float(soft.min()) >= 0 and float(soft.max()) <= 1
    # at the native size the fractions are the one-hot map itself
    same = resize_soft_labels(lab[:, :64, :64], 2, 64)
    assert torch.equal(same.argmax(1), lab[:, :64, :64]) and set(same.unique().tolist()) <= {0.0, 1.0}


def test_augmented_fractions_stay_fractions_and_follow_the_image():
    imgs = torch.zeros(16, 1, 32, 32)
    imgs[:, :, 8:20, 10:18] = 1
    labs = torch.nn.functional.one_hot((imgs[:, 0] > 0.5).long(), 3).permute(0, 3, 1, 2).float()
    out_img, out_lab = augment_batch(imgs, labs, torch.Generator().manual_seed(0))
    assert out_lab.shape == labs.shape and out_lab.is_floating_point()
    # what rotates or shrinks in from outside the slice counts as background
    torch.testing.assert_close(out_lab.sum(1), torch.ones(16, 32, 32))
    assert float(out_lab.min()) >= 0 and float(out_lab[:, 2].abs().max()) == 0  # no class appears
    # the same geometry as the image: where the square landed, class 1 holds the pixel
    bright = out_img[:, 0] > 0.8
    assert float(out_lab[:, 1][bright].mean()) > 0.9
    # a draw with the same seed on the index labels gives their argmax, where the fractions are decided
    _, hard = augment_batch(imgs, labs.argmax(1), torch.Generator().manual_seed(0))
    decided = out_lab.max(1).values > 0.9
    assert (hard[decided] == out_lab.argmax(1)[decided]).float().mean() > 0.99


def test_augmentation_is_seeded_and_keeps_labels_integral():
    imgs = torch.rand(4, 1, 32, 32)
    labs = torch.randint(0, 3, (4, 32, 32))
    a = augment_batch(imgs, labs, torch.Generator().manual_seed(3))
    b = augment_batch(imgs, labs, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == imgs.shape and a[1].shape == labs.shape
    assert a[0].min() >= 0 and a[0].max() <= 1
    assert set(a[1].unique().tolist()) <= {0, 1, 2}
    c = augment_batch(imgs, labs, torch.Generator().manual_seed(4))
    assert not torch.equal(a[0], c[0])


def test_augmentation_moves_image_and_labels_together():
    # a bright square labelled 1: after any geometric draw the bright pixels stay labelled 1
    imgs = torch.zeros(16, 1, 32, 32)
    imgs[:, :, 8:20, 10:18] = 1
    labs = (imgs[:, 0] > 0.5).long()
    out_img, out_lab = augment_batch(imgs, labs, torch.Generator().manual_seed(0))
    bright = out_img[:, 0] > 0.8
    assert (out_lab[bright] == 1).float().mean() > 0.97


def test_augmentation_keeps_left_and_right_without_rot_flip():
    # a label on the left edge: small rotations and scaling leave it on the left in every draw, the
    # paper's right-angle rotations and flips move it elsewhere in some of them
    imgs = torch.zeros(64, 1, 32, 32)
    imgs[:, :, 12:20, 2:8] = 1
    labs = (imgs[:, 0] > 0.5).long()

    def left_share(rot_flip: bool) -> torch.Tensor:
        _, out = augment_batch(imgs, labs, torch.Generator().manual_seed(0), rot_flip=rot_flip)
        return out[:, :, :16].sum(dim=(1, 2)) / out.sum(dim=(1, 2)).clamp(min=1)

    assert bool((left_share(False) == 1).all())
    assert int((left_share(True) < 0.5).sum()) >= 5  # 180-degree turns and flips: about 1 in 8


def test_configure_threads_uses_every_core_unless_told(monkeypatch):
    import torch

    from napari_smp._cpu import viewer_threads
    from napari_smp.engine.device import configure_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
        monkeypatch.delenv("NAPARI_SMP_THREADS", raising=False)
        assert configure_threads() == 4 and torch.get_num_threads() == 4  # the command line: all of them
        assert viewer_threads() == 3  # the widgets leave the viewer a core
        monkeypatch.setenv("NAPARI_SMP_THREADS", "2")
        assert configure_threads() == 2
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1  # an explicit count wins
        monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
        assert viewer_threads() == 1
    finally:
        torch.set_num_threads(before)
