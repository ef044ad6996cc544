"""The demo's and the benchmark's sparse annotation: a few evenly spread, distinct, painted slices."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_smp.engine.demo import cut_short_note, sparse_annotation


def _slab(first: int, last: int, depth: int = 30) -> np.ndarray:
    labels = np.zeros((depth, 8, 8), np.uint8)
    labels[first : last + 1, 2:6, 2:6] = 1
    labels[first : last + 1, 0, 0] = 2
    return labels


def test_picks_are_evenly_spread_inside_the_labelled_slab() -> None:
    labels = _slab(5, 24)
    sparse, picks = sparse_annotation(labels, 4)
    assert picks == [9, 13, 16, 20]  # linspace(5, 24, 6)[1:-1] = 8.8, 12.6, 16.4, 20.2
    painted = np.flatnonzero(sparse.reshape(len(sparse), -1).any(axis=1)).tolist()
    assert painted == picks
    np.testing.assert_array_equal(sparse[picks], labels[picks])  # painted slices are copied whole


def test_thin_slab_gives_fewer_distinct_picks_not_repeats() -> None:
    labels = _slab(11, 17)  # 7 labelled slices; 8 asked for
    _, picks = sparse_annotation(labels, 8)
    assert picks == sorted(set(picks))
    assert set(picks) <= set(range(12, 17))  # strictly inside the slab


def test_empty_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="labelled slice"):
        sparse_annotation(np.zeros((5, 4, 4), np.uint8), 2)


# --- honesty when the time budget ends the fine-tune early (issue 27) --------------------------------


def test_cut_short_note_says_steps_budget_and_what_the_dice_means() -> None:
    note = cut_short_note(done=21, planned=150, budget=120.0, elapsed=120.0)
    assert "cut short by the 120 s time budget after 21 of 150 steps" in note
    assert "under-trained model, not of the method" in note
    # 120 s / 21 steps * 150 = 857 s; a quarter more, in whole minutes: 1080 s
    assert "150 steps need about 857 s" in note
    assert note.endswith("--time-budget 1080 to train fully")


def test_no_note_when_every_planned_step_ran_or_nothing_capped_the_run() -> None:
    assert cut_short_note(done=150, planned=150, budget=120.0, elapsed=60.0) == ""
    assert cut_short_note(done=21, planned=150, budget=None, elapsed=60.0) == ""


def test_demo_on_a_tiny_budget_says_it_was_cut_short(tmp_path, monkeypatch) -> None:
    """A budget far below one step's time: one step is taken, and the demo's log and result say so."""
    from napari_smp.engine import demo
    from napari_smp.io import VolumeMeta, make_phantom

    full = make_phantom(0)
    z = slice(14, 30)  # 16 slices through the organs: a few seconds of prediction, the same story

    def small_phantom(seed: int = 0):
        image, labels = full.image[z].copy(), full.labels[z].copy()
        meta = VolumeMeta.from_grid(image.shape, full.meta.spacing)
        return replace(full, image=image, labels=labels, meta=meta)

    monkeypatch.setattr(demo, "make_phantom", small_phantom)
    lines: list[str] = []
    result = demo.run_demo(tmp_path / "demo", steps=150, time_budget=0.01, device="cpu", log=lines.append)
    text = "\n".join(lines)
    assert result.steps < 150 and result.planned_steps == 150
    assert result.cut_short and result.note
    assert f"cut short by the 0.01 s time budget after {result.steps} of 150 steps" in text
    dice_line = next(line for line in lines if line.startswith("mean Dice"))
    assert f"under-trained: {result.steps} of 150 steps" in dice_line
    assert (tmp_path / "demo" / "metrics.json").is_file()  # it still finished its work
