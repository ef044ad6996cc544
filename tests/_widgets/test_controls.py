"""The painted-slices line reads napari's paint history atoms (no viewer needed)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from napari_smp._widgets._controls import touched_slices


def test_touched_slices_reads_both_kinds_of_history_atom():
    Masked = namedtuple("Masked", "slice_key mask old_values new_value")
    atoms = [((np.array([2, 2, 5]), np.array([0, 1, 2]), np.array([0, 0, 0])), None, 1),
             Masked((slice(7, 9), slice(0, 4), slice(0, 4)), None, None, 1)]
    assert touched_slices(atoms) == {2, 5, 7, 8}
    assert touched_slices(["something else"]) is None
