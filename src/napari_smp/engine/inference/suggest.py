"""Where to paint next: the unpainted slice whose completion is least sure, and the class it is least sure of.

A completed painting is a probability per class at every voxel (``FilledSlices``, or the pooled result
with the network). Where propagation, the intensity evidence and the network agree they are close to
one-hot; where they hesitate (a boundary that drifted, an organ that may or may not end between
painted slices) the largest class probability drops. The expected number of wrong voxels of the
argmax answer is ``sum(1 - max_c p_c)`` over a slice; the slice where it is largest is where one more
painted slice removes the most expected error, and the class whose probability mass is least certain
there names what to look at. numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import EngineError
from .interpolation import FilledSlices

__all__ = ["Suggestion", "suggest_slice", "slice_uncertainty"]


@dataclass(frozen=True)
class Suggestion:
    """The slice to paint next.

    Attributes:
        slice: axial slice index.
        value: the user's label value of the class least certain there (0 when only background is).
        expected_errors: expected wrong voxels of the current answer on that slice.
        share: that slice's part of the whole volume's expected wrong voxels (0..1).
    """

    slice: int
    value: int
    expected_errors: float
    share: float

    def describe(self, names: dict[int, str] | None = None) -> str:
        """``paint slice 37 next (liver is least certain there: 1,204 expected wrong voxels, 18 %)``."""
        name = (names or {}).get(self.value) or ("background" if self.value == 0 else f"class {self.value}")
        share = f"{100 * self.share:.0f} % of the volume's"
        return f"paint slice {self.slice} next ({name} is least certain there: {self.expected_errors:,.0f} " \
            f"expected wrong voxels, {share})"


def slice_uncertainty(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, Z, Y, X) probabilities -> (Z,) expected wrong voxels, (C, Z) each class's uncertain mass.

    A class's uncertain mass on a slice is ``sum(min(p_c, 1 - p_c))``: voxels where it is neither surely
    there nor surely absent.
    """
    if probabilities.ndim != 4:
        raise EngineError(f"probabilities must be (C, Z, Y, X), got shape {probabilities.shape}")
    errors = np.empty(probabilities.shape[1], np.float64)
    per_class = np.empty(probabilities.shape[:2], np.float64)
    for z in range(probabilities.shape[1]):  # a slice at a time: no second (C, Z, Y, X) array
        p = probabilities[:, z].astype(np.float32, copy=False)
        errors[z] = float((1.0 - p.max(axis=0)).sum())
        per_class[:, z] = np.minimum(p, 1.0 - p).reshape(p.shape[0], -1).sum(axis=1)
    return errors, per_class


def suggest_slice(filled: FilledSlices, exclude: Iterable[int] = ()) -> Suggestion:
    """The unpainted slice of ``filled`` with the most expected wrong voxels (module docstring).

    Args:
        filled: class probabilities of every slice; its painted slices are never suggested.
        exclude: more slices not to suggest (the user declined them, or painted them since).

    Raises:
        EngineError: every slice is painted or excluded.
    """
    errors, per_class = slice_uncertainty(filled.probabilities)
    skip = set(filled.painted.tolist()) | {int(z) for z in exclude}
    candidates = [z for z in range(errors.size) if z not in skip]
    if not candidates:
        raise EngineError("every slice is painted already: nothing left to suggest")
    z = max(candidates, key=lambda i: (errors[i], -i))
    c = int(np.argmax(per_class[1:, z])) + 1 if per_class.shape[0] > 1 and per_class[1:, z].max() > 0 else 0
    total = float(errors[candidates].sum())
    return Suggestion(int(z), int(filled.classes[c]), float(errors[z]), float(errors[z] / total) if total else 0.0)
