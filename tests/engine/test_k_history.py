"""K over training in a checkpoint: recorded by the fine-tune, read back, old checkpoints have none."""

from dataclasses import dataclass

from napari_smp.engine.k_history import k_history, read_k_history


@dataclass
class _R:
    step: int
    k: int | None


def test_history_keeps_every_step_and_none_without_a_bank():
    assert k_history([_R(1, 50), _R(2, 48), _R(3, 61)]) == [[1, 50], [2, 48], [3, 61]]
    assert k_history([_R(1, None), _R(2, None)]) is None


def test_long_histories_are_thinned_evenly_and_keep_the_last_step():
    pts = k_history([_R(i, i % 50) for i in range(1, 1002)], max_points=100)
    assert len(pts) <= 101 and pts[0] == [1, 1] and pts[-1] == [1001, 1001 % 50]
    steps = [s for s, _ in pts]
    assert steps == sorted(steps)


def test_read_back_and_absent():
    assert read_k_history({"k_history": [[1, 50], [2, 37]]}) == [(1, 50), (2, 37)]
    assert read_k_history({"steps": 3}) is None
