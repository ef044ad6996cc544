"""What the image says between painted slices: propagated labels as a prior, intensities as evidence.

Propagation (``propagation.propagate``) carries the painting's *shapes* along the image's motion; it
never asks whether a voxel looks like the class it is given. Here each class's intensity distribution
is learnt from the painted slices (a smoothed histogram of normalised intensities, 64 bins) and every
unpainted voxel gets the posterior of the classic atlas-based segmentation:

    p(c | x)  ~  prior_c(x) * p(I(x) | c) ** beta

with the prior the propagated probabilities blurred in-plane by ``sigma + growth * d`` pixels (d: slices
to the nearest painted slice), so the evidence can move a boundary by a few pixels, more the further
propagation had to travel, but cannot create an organ far from where propagation put it. ``beta = 0``
is propagation unchanged.

How strongly to trust intensities differs from volume to volume (grey and white matter are told apart by
intensity alone; liver and spleen are not), so :func:`calibrate` measures it on the painting itself:
each painted slice in turn is hidden, propagated to from its painted neighbours, refined by every
candidate strength, and scored against what the user painted there; the candidate with the best mean
Dice wins, propagation alone included, so a volume where intensities mislead keeps propagation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..errors import Cancelled
from ..volumes import guess_norm, normalize_volume
from .interpolation import FilledSlices

__all__ = [
    "CANDIDATES",
    "SINGLE_SLICE",
    "Calibration",
    "IntensityModel",
    "Refinement",
    "calibrate",
    "intensity_bins",
    "refine",
]

#: histogram bins over the normalised [0, 1] range (a soft-tissue CT window: 6 HU a bin)
BINS = 64


@dataclass(frozen=True)
class Refinement:
    """One strength of the intensity evidence.

    Attributes:
        beta: exponent of the likelihood (0: propagation unchanged).
        sigma: in-plane blur of the prior, pixels, at a painted slice's neighbour.
        growth: added blur per slice of distance to the nearest painted slice.
    """

    beta: float
    sigma: float = 2.0
    growth: float = 0.0

    def __str__(self) -> str:
        if self.beta == 0:
            return "propagation alone"
        grow = f" + {self.growth:g}/slice" if self.growth else ""
        return f"intensity evidence beta {self.beta:g}, prior blur {self.sigma:g} px{grow}"


#: what :func:`calibrate` chooses from. Measured on the phantom, dev CT, MNI brain and two lesions (k = 1,
#: 3, 6; docs/experiments/2026-12-07-intensity-evidence.md): the best fixed one differed by volume (beta 1
#: with a growing blur on the MNI brain, +0.36; beta 0.5 on the phantom; none on the dev CT at k = 6)
CANDIDATES = (
    Refinement(0.0),
    Refinement(0.5, 2.0),
    Refinement(1.0, 2.0),
    Refinement(1.0, 4.0),
    Refinement(1.0, 1.0, 0.5),
)
#: a single painted slice cannot be held out: the strength that did best on average over the pilot volumes
SINGLE_SLICE = Refinement(1.0, 2.0)


@dataclass
class IntensityModel:
    """Per-class intensity log-likelihoods learnt from painted slices.

    Attributes:
        log_likelihood: (C, BINS) float32, log p(bin | class), each row a smoothed, floored histogram.
    """

    log_likelihood: np.ndarray

    @classmethod
    def fit(cls, bins: np.ndarray, compact: np.ndarray, num_classes: int) -> IntensityModel:
        """From (P, Y, X) intensity bins of the painted slices and their (P, Y, X) channel indices."""
        out = np.zeros((num_classes, BINS), np.float64)
        for c in range(num_classes):
            h = np.bincount(bins[compact == c].ravel(), minlength=BINS).astype(np.float64)
            # smoothed (a few hundred pixels leave gaps between bins) and floored (a value never painted
            # for a class is unlikely, not impossible: noise, partial volumes)
            h = ndimage.gaussian_filter1d(h, 1.0) + 1e-3 * h.sum() / BINS + 1e-9
            out[c] = np.log(h / h.sum())
        return cls(out.astype(np.float32))

    def posterior(self, prior: np.ndarray, bins: np.ndarray, how: Refinement, distance: int) -> np.ndarray:
        """(C, Y, X) prior probabilities and (Y, X) bins -> (C, Y, X) float32 posterior (sums to 1)."""
        if how.beta == 0:
            return prior
        s = how.sigma + how.growth * distance
        blurred = np.stack([ndimage.gaussian_filter(p, s) for p in prior]) if s > 0 else prior
        logp = np.log(blurred + 1e-3) + how.beta * self.log_likelihood[:, bins]
        logp -= logp.max(axis=0, keepdims=True)
        post = np.exp(logp)
        return (post / post.sum(axis=0, keepdims=True)).astype(np.float32)


def intensity_bins(image: np.ndarray) -> np.ndarray:
    """(Z, Y, X) intensities -> (Z, Y, X) uint8 bin of each voxel, normalised as fine-tuning does."""
    volume = normalize_volume(image, guess_norm(image))
    return np.clip((volume * BINS).astype(np.int16), 0, BINS - 1).astype(np.uint8)


def _model(bins: np.ndarray, filled: FilledSlices) -> IntensityModel:
    p = filled.painted
    compact = np.argmax(filled.probabilities[:, p], axis=0)  # painted slices are one-hot
    return IntensityModel.fit(bins[p], compact, len(filled.classes))


def refine(
    filled: FilledSlices,
    bins: np.ndarray,
    how: Refinement,
    cancel: Callable[[], bool] | None = None,
) -> FilledSlices:
    """Weigh every unpainted slice of ``filled`` by the intensity evidence (in place; returned).

    Slices ``filled.reused`` marks came from a previous result that was refined already: they stay.

    Args:
        filled: propagated probabilities (C, Z, Y, X); painted slices stay one-hot.
        bins: (Z, Y, X) from :func:`intensity_bins`.
    """
    if how.beta == 0:
        return filled
    model = _model(bins, filled)
    painted = set(filled.painted.tolist())
    if filled.reused is not None:
        painted |= set(np.flatnonzero(filled.reused).tolist())
    distance = filled.distance
    for z in range(bins.shape[0]):
        if cancel is not None and cancel():
            raise Cancelled("refinement cancelled")
        if z not in painted:
            p = filled.probabilities[:, z]
            filled.probabilities[:, z] = model.posterior(p, bins[z], how, int(distance[z]))
    return FilledSlices(filled.probabilities, filled.classes, filled.painted, filled.far,
                        filled.method + "+intensity", filled.reused)  # fmt: skip


@dataclass
class Calibration:
    """The chosen strength and the held-out Dice of every candidate."""

    choice: Refinement
    scores: dict[Refinement, float] = field(default_factory=dict)


def calibrate(
    image: np.ndarray,
    filled: FilledSlices,
    bins: np.ndarray,
    fill: Callable[[np.ndarray, np.ndarray, np.ndarray], FilledSlices],
    candidates: tuple[Refinement, ...] = CANDIDATES,
    cancel: Callable[[], bool] | None = None,
) -> Calibration:
    """Choose the evidence's strength by hiding each painted slice in turn (module docstring).

    Args:
        image: (Z, Y, X) intensities.
        filled: the propagation from every painted slice (its painted slices are the answers).
        bins: (Z, Y, X) from :func:`intensity_bins`.
        fill: ``fill(image_slab, labels_slab, painted_in_slab) -> FilledSlices``: the propagation, run on
            the slab between the hidden slice's painted neighbours only (a fraction of the volume).
        candidates: the strengths to compare.
    """
    painted = filled.painted
    if len(painted) < 2:
        return Calibration(SINGLE_SLICE)
    labels = np.argmax(filled.probabilities[:, painted], axis=0)  # (P, Y, X) channel indices
    inter = {h: np.zeros(len(filled.classes)) for h in candidates}
    total = {h: np.zeros(len(filled.classes)) for h in candidates}
    for i, z in enumerate(painted.tolist()):
        if cancel is not None and cancel():
            raise Cancelled("calibration cancelled")
        lo = int(painted[i - 1]) if i > 0 else z
        hi = int(painted[i + 1]) if i + 1 < len(painted) else z
        others = [int(q) - lo for q in (lo, hi) if q != z]
        slab = np.zeros((hi - lo + 1, *labels.shape[1:]), np.int64)
        for q in others:
            slab[q] = labels[int(np.searchsorted(painted, q + lo))]
        # the slab's own classes are those its painted neighbours hold: map them back to ours
        held = fill(image[lo : hi + 1], slab, np.array(others))
        prior = np.zeros((len(filled.classes), *labels.shape[1:]), np.float32)
        prior[held.classes] = held.probabilities[:, z - lo]
        neighbours = np.array([lo + q for q in others])
        # the intensities as the neighbours alone paint them: the hidden slice's own pixels stay out
        model = IntensityModel.fit(bins[neighbours], labels[np.searchsorted(painted, neighbours)], len(filled.classes))
        truth = labels[i]
        d = min(abs(z - int(q)) for q in neighbours)
        for how in candidates:
            guess = np.argmax(model.posterior(prior, bins[z], how, d), axis=0)
            inter[how] += np.bincount(truth[guess == truth].ravel(), minlength=len(filled.classes))
            total[how] += np.bincount(truth.ravel(), minlength=len(filled.classes))
            total[how] += np.bincount(guess.ravel(), minlength=len(filled.classes))
    scores = {}
    for how in candidates:
        present = total[how][1:] > 0
        dice = 2 * inter[how][1:][present] / total[how][1:][present]
        scores[how] = float(dice.mean()) if dice.size else float("nan")
    if not max(np.nan_to_num(list(scores.values()), nan=0.0)) > 0:
        # no hidden slice could be told from its neighbours (a lesion painted on one slice between
        # all-background ones): the held-out scores say nothing, so the single-slice default holds
        return Calibration(SINGLE_SLICE, scores)
    # ties keep the earlier, weaker candidate: propagation alone first
    best = max(candidates, key=lambda h: (np.nan_to_num(scores[h], nan=-1.0), -candidates.index(h)))
    return Calibration(best, scores)
