"""What a painting holds: painted-slice counts kept current while painting, typed background slices, and
which Labels layer looks like a painting rather than a ground truth."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_smp.engine.annotation import (
    AnnotationSummary,
    ground_truth_warning,
    painted_slice_count,
    parse_background_slices,
    sparsest_painting,
)


def test_annotation_summary_counts_slices_and_classes_and_follows_paint():
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[1, 2:4, 2:4] = 1
    labels[4, 0, 0] = 3
    s = AnnotationSummary(labels)
    assert s.slices == [1, 4] and s.classes == [1, 3]
    assert s.describe({1: "liver", 3: "spleen"}) == "2 slices annotated (1, 4): liver, spleen"
    labels[4] = 0  # erase a slice, paint another, recount only those two
    labels[5, 1, 1] = 2
    s.recount([4, 5])
    assert s.slices == [1, 5] and s.classes == [1, 2]
    assert "no slice annotated" in AnnotationSummary(np.zeros((2, 3, 3), np.uint8)).describe()


def test_recount_changed_finds_edits_it_was_not_told_about():
    labels = np.zeros((5, 6, 6), np.int32)
    labels[1, :2, :2] = 1
    labels[3, 0, 0] = 2
    s = AnnotationSummary(labels)
    assert s.recount_changed() == [] and s.slices == [1, 3]  # nothing changed: nothing recounted
    labels[1, :2, :2] = 0  # an undo erases slice 1
    labels[3, 0, 0] = 1  # and turns the class of slice 3 from 2 into 1 (same voxel count)
    labels[4, 5, 5] = 2  # a redo paints slice 4
    assert s.recount_changed() == [1, 3, 4]
    assert s.slices == [3, 4] and s.classes == [1, 2]
    s.recount([0])  # a told edit refreshes that slice's fingerprint too
    labels[0, 0, 0] = 2
    s.recount([0])
    assert s.recount_changed() == [] and s.slices == [0, 3, 4]


def test_background_slices_are_parsed_into_distinct_indices_or_refused_with_a_sentence():
    assert parse_background_slices("", 10) == []
    assert parse_background_slices(" 7, 3 3,0 ", 10) == [0, 3, 7]
    with pytest.raises(ValueError, match="slice numbers separated by commas"):
        parse_background_slices("3, five", 10)
    with pytest.raises(ValueError, match=r"\[-1, 10\] are outside the volume's slices 0..9"):
        parse_background_slices("-1, 2, 10", 10)


def test_the_numpy_only_engine_modules_load_without_torch():
    code = ("import sys, napari_smp.engine.annotation, napari_smp.engine.finetune_settings; "
            "print('torch' in sys.modules)")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", errors="replace", check=True
    ).stdout
    assert out.strip() == "False"


def test_the_sparsest_painted_layer_is_preferred_and_an_empty_one_never():
    gt = np.zeros((10, 4, 4), np.uint8)
    gt[1:9, 1, 1] = 2  # a reference on 8 slices
    painting = np.zeros_like(gt)
    painting[[2, 6], 0, 0] = 1
    empty = np.zeros_like(gt)
    counts = [painted_slice_count(a) for a in (gt, empty, painting)]
    assert counts == [8, 0, 2]
    assert sparsest_painting(counts) == 2  # not the first layer, not the empty one
    assert sparsest_painting([3, 5, 3]) == 0  # a tie keeps the viewer's order
    assert sparsest_painting([0, 0]) is None and sparsest_painting([]) is None


def test_a_layer_labelled_on_nearly_every_slice_is_called_a_ground_truth():
    warn = ground_truth_warning(list(range(1, 119)), 120)
    assert warn == ("this looks like a ground truth (labels on 118 of 120 slices): "
                    "fine-tune learns from every labelled slice")
    # an organ's reference in a larger volume: dense over its own range
    assert "labels on 40 of the 42 slices 10-51" in ground_truth_warning(
        [z for z in range(10, 52) if z not in (20, 30)], 300)
    # paintings: a few slices far apart, a short run of neighbours, a 2D image painted whole
    assert ground_truth_warning([12, 19, 27, 34], 120) == ""
    assert ground_truth_warning([40, 41, 42, 43], 120) == ""  # 4 in a row: too short a run
    assert ground_truth_warning(list(range(0, 100, 2)), 120) == ""  # every other slice: half the range
    assert ground_truth_warning([0], 1) == "" and ground_truth_warning([], 50) == ""
    # the boundaries: 80 % of the volume's slices warns, one fewer does not
    assert ground_truth_warning(list(range(8)), 10) != ""
    assert ground_truth_warning(list(range(7)), 10) == ""


def test_scribble_summary_counts_marked_pixels_and_names_the_background():
    labels = np.zeros((5, 8, 8), np.uint8)
    labels[1, 2, 2:5] = 1  # a three-pixel stroke of class 1
    labels[3, :, 0] = 9  # a background stroke down the first column
    summary = AnnotationSummary(labels)
    assert summary.pixels == 11
    assert summary.describe({1: "liver"}, background=9) == (
        "11 pixels annotated on 2 axial slices (1, 3): liver; background (label 9)"
    )
    assert summary.describe(background=4).endswith("class 1, class 9; no background yet: paint some with label 4")
    labels[1, 2, 2] = 0  # a stroke erased: the count follows a recount of that slice
    summary.recount([1])
    assert summary.pixels == 10
    assert AnnotationSummary(np.zeros((2, 4, 4), np.uint8)).describe(background=9).startswith("nothing annotated yet")


def test_scribble_targets_write_background_as_0_and_mark_what_is_known():
    from napari_smp.engine.annotation import scribble_targets

    painting = np.zeros((2, 4, 4), np.uint16)
    painting[0, 0] = 7
    painting[1, 1, 1] = 300
    labels, known = scribble_targets(painting, 7)
    assert labels.dtype == np.uint16 and set(np.unique(labels).tolist()) == {0, 300}
    np.testing.assert_array_equal(known, painting != 0)
    assert labels[0, 0].tolist() == [0, 0, 0, 0] and known[0, 0].all() and not known[0, 1].any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.int64])
def test_slice_classes_are_found_whatever_the_integer_type(dtype):
    # the fast count (bincount) for small non-negative labels and the sort for the rest give the same classes
    labels = np.zeros((3, 6, 6), dtype)
    labels[0, 1, 1], labels[0, 2, 2], labels[2, 5, 5] = 7, 300 if np.iinfo(dtype).max >= 300 else 9, 1
    if np.iinfo(dtype).min < 0:
        labels[1, 0, 0] = -2  # a negative value is still a label here (volumes.check_labels refuses it later)
    expected = sorted({int(v) for v in np.unique(labels) if v})
    summary = AnnotationSummary(labels)
    assert summary.classes == expected
    assert summary.slices == sorted({z for z in range(3) if labels[z].any()})


@pytest.mark.parametrize("shape", [(4, 8, 8), (4, 5, 5)])  # slices of whole 64-bit words, and not
def test_recount_changed_sees_a_moved_label_of_napari_s_uint8_layers(shape):
    labels = np.zeros(shape, np.uint8)
    labels[2, 1, 1] = 3
    s = AnnotationSummary(labels)
    assert s.pixels == 1 and s.recount_changed() == []
    labels[2, 1, 1], labels[2, 3, 3] = 0, 3  # the same label moved: same count, same sum of labels
    assert s.recount_changed() == ([2] if shape[1] * shape[2] % 8 == 0 else [])
    labels[1, 0, 0] = 200
    assert 1 in s.recount_changed() and s.slices == [1, 2] and s.pixels == 2
