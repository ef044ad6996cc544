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

The prior can also take a share of the painting's *shape* interpolated between painted slices
(``interpolation.interpolate``: signed distances blended in z): ``prior = (1 - s) propagated + s
interpolated``. The two fail differently (propagation drifts where the image's motion misleads it, a
lesion in lung; interpolation ignores the image), so their mixture often beats both: on the lung lesion
0.87 against 0.65 / 0.75 alone at k = 2 (docs/experiments/2026-12-07-shape-in-the-prior.md).

How strongly to trust intensities differs from volume to volume (grey and white matter are told apart by
intensity alone; liver and spleen are not), so :func:`calibrate` measures it on the painting itself:
each painted slice in turn is hidden, propagated to from its painted neighbours, refined by every
candidate (shape share and evidence strength), and scored against what the user painted there; the
candidate with the best mean Dice wins, propagation alone included, so a volume where intensities or
interpolated shapes mislead keeps propagation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from ..errors import Cancelled
from ..volumes import guess_norm, normalize_volume
from .interpolation import FilledSlices, interpolate

__all__ = [
    "CANDIDATES",
    "SHAPE_SHARES",
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
    """How the propagated map is refined: a share of interpolated shape in the prior, then the evidence.

    Attributes:
        beta: exponent of the likelihood (0: no intensity evidence).
        sigma: in-plane blur of the prior, pixels, at a painted slice's neighbour.
        growth: added blur per slice of distance to the nearest painted slice.
        shape: share of the shape interpolation in the prior (0: propagation alone).
    """

    beta: float
    sigma: float = 2.0
    growth: float = 0.0
    shape: float = 0.0

    def __str__(self) -> str:
        if self.beta == 0 and self.shape == 0:
            return "propagation alone"
        parts = [f"interpolated shape {self.shape:g}"] if self.shape else []
        if self.beta:
            grow = f" + {self.growth:g}/slice" if self.growth else ""
            parts.append(f"intensity evidence beta {self.beta:g}, prior blur {self.sigma:g} px{grow}")
        return "; ".join(parts)

    @property
    def changes(self) -> bool:
        """False for propagation alone (no shape share, no evidence): the map stays as propagated."""
        return bool(self.beta or self.shape)

    def blur(self, distance: int) -> float:
        """The prior's in-plane blur (pixels) on a slice ``distance`` slices from the nearest painted one."""
        return self.sigma + self.growth * distance


#: what :func:`calibrate` chooses from. Measured on the phantom, dev CT, MNI brain and two lesions (k = 1,
#: 3, 6; docs/experiments/2026-12-07-intensity-evidence.md): the best fixed one differed by volume (beta 1
#: with a growing blur on the MNI brain, +0.36; beta 0.5 on the phantom; none on the dev CT at k = 6)
_STRENGTHS = (
    Refinement(0.0),
    Refinement(0.5, 2.0),
    Refinement(1.0, 2.0),
    Refinement(1.0, 4.0),
    Refinement(1.0, 1.0, 0.5),
)
#: the interpolated shape's shares of the prior tried. On the same volumes (k = 2, 3, 6; 2 seeds) a half
#: share lifted the lung lesion by 0.03-0.14 and the dev CT at k = 3 and 6 by 0.01-0.02, and cost the
#: phantom up to 0.04 at k = 3 (its propagation is near perfect): chosen per painting, never fixed
SHAPE_SHARES = (0.0, 0.3, 0.5)
#: every (shape share, strength) pair, propagation alone first (a tie keeps the earlier candidate)
CANDIDATES = tuple(replace(h, shape=s) for s in SHAPE_SHARES for h in _STRENGTHS)
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

    def posterior(
        self, prior: np.ndarray, bins: np.ndarray, how: Refinement, distance: int, shape: np.ndarray | None = None
    ) -> np.ndarray:
        """(C, Y, X) prior probabilities and (Y, X) bins -> (C, Y, X) float32 posterior (sums to 1).

        ``shape``: (C, Y, X) interpolated probabilities, mixed into the prior by ``how.shape`` (needed then).
        """
        prior = _mix(prior, shape, how.shape)
        if how.beta == 0:
            return prior
        return self.weigh(_blur(prior, how.blur(distance)), bins, how.beta)

    def weigh(self, prior: np.ndarray, bins: np.ndarray, beta: float) -> np.ndarray:
        """(C, Y, X) (blurred) prior times the likelihood of the (Y, X) bins to the ``beta``, normalised."""
        logp = np.log(prior + 1e-3) + beta * self.log_likelihood[:, bins]
        logp -= logp.max(axis=0, keepdims=True)
        post = np.exp(logp)
        return (post / post.sum(axis=0, keepdims=True)).astype(np.float32)


def _mix(prior: np.ndarray, shape: np.ndarray | None, share: float) -> np.ndarray:
    """(1 - share) prior + share shape (a mixture: both sum to 1 over C, so does the result)."""
    if share == 0:
        return prior
    if shape is None:
        raise ValueError("a refinement with an interpolated shape needs the interpolation")
    return ((1.0 - share) * prior + share * shape).astype(np.float32)


def _blur(prior: np.ndarray, sigma: float) -> np.ndarray:
    """Each (Y, X) channel of a (C, Y, X) map blurred in-plane (linear: blurring a mixture = mixing blurs)."""
    return np.stack([ndimage.gaussian_filter(p, sigma) for p in prior]) if sigma > 0 else prior


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
    """Refine every unpainted slice of ``filled`` as ``how`` says (in place; returned).

    A shape share interpolates the painted slices of ``filled`` (one-hot there) between each other;
    the intensity evidence then weighs the mixture. Slices ``filled.reused`` marks came from a previous
    result that was refined already: they stay.

    Args:
        filled: propagated probabilities (C, Z, Y, X); painted slices stay one-hot.
        bins: (Z, Y, X) from :func:`intensity_bins`.
    """
    if not how.changes:
        return filled
    model = _model(bins, filled)
    shape = _interpolated(filled) if how.shape else None
    painted = set(filled.painted.tolist())
    if filled.reused is not None:
        painted |= set(np.flatnonzero(filled.reused).tolist())
    distance = filled.distance
    for z in range(bins.shape[0]):
        if cancel is not None and cancel():
            raise Cancelled("refinement cancelled")
        if z not in painted:
            p = filled.probabilities[:, z]
            q = None if shape is None else shape[:, z]
            filled.probabilities[:, z] = model.posterior(p, bins[z], how, int(distance[z]), q)
    method = filled.method + ("+shape" if how.shape else "") + ("+intensity" if how.beta else "")
    return FilledSlices(filled.probabilities, filled.classes, filled.painted, filled.far, method, filled.reused)


def _interpolated(filled: FilledSlices) -> np.ndarray:
    """(C, Z, Y, X) the shape interpolation of the painted slices of ``filled``, in its channel order."""
    compact = np.argmax(filled.probabilities[:, filled.painted], axis=0)  # painted slices are one-hot
    labels = np.zeros(filled.probabilities.shape[1:], np.uint16 if len(filled.classes) > 256 else np.uint8)
    labels[filled.painted] = compact  # channel indices as labels: 0 stays background
    shape = interpolate(labels, filled.painted)
    if shape.classes.size == len(filled.classes):
        return shape.probabilities
    out = np.zeros_like(filled.probabilities)  # a class with no painted pixel: the interpolation has no channel
    out[shape.classes] = shape.probabilities
    return out


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
    """Choose the shape share and the evidence's strength by hiding each painted slice in turn (module docstring).

    Args:
        image: (Z, Y, X) intensities.
        filled: the propagation from every painted slice (its painted slices are the answers).
        bins: (Z, Y, X) from :func:`intensity_bins`.
        fill: ``fill(image_slab, labels_slab, painted_in_slab) -> FilledSlices``: the propagation, run on
            the slab between the hidden slice's painted neighbours only (a fraction of the volume).
        candidates: the refinements to compare.
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
        shape = None
        if any(h.shape for h in candidates):  # the interpolation from the same neighbours
            between = interpolate(slab, np.array(others))
            shape = np.zeros_like(prior)
            shape[between.classes] = between.probabilities[:, z - lo]
        neighbours = np.array([lo + q for q in others])
        # the intensities as the neighbours alone paint them: the hidden slice's own pixels stay out
        model = IntensityModel.fit(bins[neighbours], labels[np.searchsorted(painted, neighbours)], len(filled.classes))
        truth = labels[i]
        d = min(abs(z - int(q)) for q in neighbours)
        for how, guess in _guesses(model, prior, shape, bins[z], d, candidates):
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


def _guesses(
    model: IntensityModel,
    prior: np.ndarray,
    shape: np.ndarray | None,
    bins: np.ndarray,
    distance: int,
    candidates: tuple[Refinement, ...],
) -> Iterator[tuple[Refinement, np.ndarray]]:
    """Each candidate's (Y, X) answer on one hidden slice, from its (C, Y, X) propagated and interpolated maps.

    The same as ``model.posterior`` for each, but each source is blurred once per blur width (blurring
    is linear, so the blur of a mixture is the mixture of the blurs).
    """
    blurred: dict[tuple[int, float], np.ndarray] = {}
    for how in candidates:
        if how.beta == 0:
            post = _mix(prior, shape, how.shape)
        else:
            s = how.blur(distance)
            for source, m in ((0, prior), (1, shape if how.shape else None)):
                if m is not None and (source, s) not in blurred:
                    blurred[source, s] = _blur(m, s)
            mixed = _mix(blurred[0, s], blurred.get((1, s)), how.shape)
            post = model.weigh(mixed, bins, how.beta)
        yield how, np.argmax(post, axis=0)
