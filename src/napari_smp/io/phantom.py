"""A procedural abdominal CT phantom: a small, deterministic stand-in for a labelled CT scan.

The phantom is drawn from analytic shapes in patient millimetres, so it needs no data files and
no licence. Organs are ellipses whose centre, size and tilt change smoothly from slice to slice
(ellipsoid-like profiles along z), with a lobed outline that differs per organ. Intensities follow
contrast-enhanced (portal-venous) CT in Hounsfield units; several of them overlap on purpose
(liver ~60 vs spleen ~52 vs muscle ~50; kidney cortex ~155 vs aorta ~190 vs bone; stomach gas vs
bowel gas vs air), so a model must use shape and position, not a threshold. Unlabelled confusers
(muscles, vena cava, bowel loops, intervertebral discs) sit beside the labelled organs.

Axes follow the package convention: ``(Z, Y, X)`` = (inferior->superior, posterior->anterior,
left->right), so the liver is at large x (patient right) and the spine at small y (posterior).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .meta import VolumeMeta

__all__ = ["Phantom", "make_phantom", "PHANTOM_CLASSES", "PHANTOM_SHAPE", "PHANTOM_SPACING"]

PHANTOM_SHAPE = (48, 160, 160)
PHANTOM_SPACING = (4.0, 2.0, 2.0)  # mm, (Z, Y, X): thick axial slices, like a downsampled clinical CT
PHANTOM_CLASSES = (
    "background",
    "liver",
    "spleen",
    "kidney_right",
    "kidney_left",
    "aorta",
    "stomach",
    "vertebra",
)

_AIR_HU = -1000.0
_NOISE_HU = 12.0  # quantum noise of a standard-dose abdominal CT
_TEXTURE_HU = 10.0  # low-frequency parenchymal / fat inhomogeneity


@dataclass
class Phantom:
    """A labelled phantom volume.

    Attributes:
        image: ``(Z, Y, X)`` float32 CT intensities in HU.
        labels: ``(Z, Y, X)`` uint8 class indices into ``class_names``.
        meta: geometry (axis-aligned RAS+ grid, centred on the world origin).
        class_names: name of each label value, ``class_names[0] == "background"``.
    """

    image: np.ndarray
    labels: np.ndarray
    meta: VolumeMeta
    class_names: list[str]


class _Canvas:
    """Paints structures in order; a later structure overwrites both the HU and the label under it."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
        nz, ny, nx = shape
        sz, sy, sx = spacing
        # float32 throughout: the shapes need no more precision and it halves the drawing time
        self.u = ((np.arange(nx, dtype=np.float32) - (nx - 1) / 2) * sx)[None, None, :]  # mm to patient right
        self.v = ((np.arange(ny, dtype=np.float32) - (ny - 1) / 2) * sy)[None, :, None]  # mm to anterior
        self.t = ((np.arange(nz, dtype=np.float32) + 0.5) / nz)[:, None, None]  # 0 inferior edge, 1 superior
        self.hu = np.full(shape, _AIR_HU, dtype=np.float32)
        self.labels = np.zeros(shape, dtype=np.uint8)

    def radius(
        self,
        cu: np.ndarray | float,
        cv: np.ndarray | float,
        ru: float,
        rv: float,
        *,
        tc: float = 0.5,
        half: float = np.inf,
        angle: float = 0.0,
        lobes: tuple[int, float, float] = (0, 0.0, 0.0),
    ) -> np.ndarray:
        """Normalised elliptic radius, ``(Z, Y, X)``: <= 1 inside the structure on each slice.

        Args:
            cu, cv: centre (mm, right and anterior), scalars or ``(Z, 1, 1)`` arrays for a drifting centre.
            ru, rv: semi-axes in mm at the structure's widest slice.
            tc, half: centre and half-extent along z (fractions of the volume height); the semi-axes
                shrink like an ellipsoid towards ``tc +- half``.
            angle: in-plane tilt in radians.
            lobes: ``(k, amplitude, phase)`` of a ``k``-lobed outline modulation.
        """
        profile = np.sqrt(np.clip(1.0 - ((self.t - tc) / half) ** 2, 0.0, None)) if np.isfinite(half) else 1.0
        profile = np.maximum(profile, 1e-6)
        du, dv = self.u - np.float32(cu), self.v - np.float32(cv)
        c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        a, b = c * du + s * dv, c * dv - s * du
        scale = np.float32(1.0) / np.asarray(profile, dtype=np.float32)
        r = np.sqrt((a * (scale / np.float32(ru))) ** 2 + (b * (scale / np.float32(rv))) ** 2)
        k, amp, phase = lobes
        if k:
            r = r / (
                np.float32(1.0)
                + np.float32(amp) * np.sin(np.float32(k) * np.arctan2(b, a) + np.float32(phase))
            )
        return r

    def paint(self, mask: np.ndarray, hu: np.ndarray | float, label: int = 0) -> None:
        """Set HU and label where ``mask`` holds; both broadcast against ``(Z, Y, X)``."""
        mask = np.broadcast_to(mask, self.hu.shape)
        self.hu[mask] = np.broadcast_to(hu, self.hu.shape)[mask]
        self.labels[mask] = label


def _body(cv: _Canvas) -> None:
    """Skin-fat rim, abdominal wall muscle and visceral fat; air stays outside."""
    r = cv.radius(0.0, 0.0, 140.0, 100.0, lobes=(2, 0.03, 0.0))
    cv.paint(r <= 1.0, -100.0)  # subcutaneous fat
    cv.paint(r <= 0.93, 45.0)  # abdominal wall muscle
    cv.paint(r <= 0.87, -85.0)  # visceral fat


def _bowel(cv: _Canvas, rng: np.random.Generator) -> None:
    """Unlabelled bowel loops in the lower anterior abdomen: soft-tissue wall, fluid or gas inside."""
    for _ in range(16):
        cu, cvv = rng.uniform(-80, 80), rng.uniform(-5, 70)
        size = rng.uniform(8, 15)
        tc, half = rng.uniform(0.05, 0.6), rng.uniform(0.12, 0.3)
        r = cv.radius(
            cu, cvv, size, size * rng.uniform(0.7, 1.0), tc=tc, half=half, angle=rng.uniform(0, np.pi)
        )
        cv.paint(r <= 1.0, 35.0)
        cv.paint(r <= 0.7, -800.0 if rng.random() < 0.5 else 20.0)


def _muscles_and_vessels(cv: _Canvas) -> None:
    """Unlabelled confusers: paraspinal muscles, psoas (thicker inferiorly) and the inferior vena cava."""
    for side in (-1.0, 1.0):
        cv.paint(cv.radius(side * 32.0, -82.0, 22.0, 15.0, angle=side * 0.3) <= 1.0, 50.0)
        psoas = 6.0 + 12.0 * np.clip(1.0 - cv.t, 0.0, 1.0)
        r = np.hypot((cv.u - side * 36.0) / psoas, (cv.v + 48.0) / psoas)
        cv.paint(r <= 1.0, 48.0)
    cv.paint(cv.radius(24.0, -16.0, 13.0, 9.0) <= 1.0, 105.0)  # inferior vena cava


def _organs(cv: _Canvas, rng: np.random.Generator) -> None:
    """The seven labelled classes, with seed-dependent outlines and drifts."""
    t = cv.t
    jitter = rng.uniform(-1.0, 1.0, size=8)
    phases = rng.uniform(0.0, 2 * np.pi, size=8)
    # kidneys: enhancing cortex around darker medulla and a fat-filled sinus on the medial side
    for label, side, tc in ((3, 1.0, 0.32), (4, -1.0, 0.42)):
        cu, cvv = side * (64.0 + 3 * jitter[label]), -44.0 + 4.0 * np.sin(np.pi * t)
        r = cv.radius(
            cu, cvv, 24.0, 34.0, tc=tc, half=0.22, angle=-side * 0.45, lobes=(2, 0.05, phases[label])
        )
        hu = np.where(r > 0.68, 155.0, 35.0)
        sinus = cv.radius(cu - side * 14.0, cvv, 8.0, 11.0, tc=tc, half=0.12) <= 1.0
        cv.paint(r <= 1.0, np.where(sinus, -60.0, hu), label)
    # liver: large, right upper quadrant, widest at the top of the volume
    cu = 58.0 + 6.0 * np.sin(2 * np.pi * t + phases[1]) + 3 * jitter[1]
    r = cv.radius(cu, 6.0, 78.0, 68.0, tc=0.78, half=0.45, angle=-0.35, lobes=(3, 0.07, phases[1]))
    vessels = cv.radius(cu - 10.0, 10.0 * np.cos(6 * t), 6.0, 6.0) <= 1.0  # portal vein branch, same class
    cv.paint(r <= 1.0, np.where(vessels, 120.0, 60.0), 1)
    # spleen: left posterior, nearly liver-bright
    r = cv.radius(
        -86.0 + 3 * jitter[2], -30.0, 27.0, 44.0, tc=0.72, half=0.22, angle=0.55, lobes=(2, 0.08, phases[2])
    )
    cv.paint(r <= 1.0, 52.0, 2)
    # stomach: left upper quadrant; gas rises anteriorly in a supine patient, fluid below it
    cu, cvv = -42.0 + 4 * jitter[6], 34.0 + 5.0 * np.sin(np.pi * t)
    r = cv.radius(cu, cvv, 44.0, 30.0, tc=0.8, half=0.22, angle=0.6, lobes=(3, 0.06, phases[6]))
    content = np.where(cv.v > cvv + 8.0, -850.0, 15.0)
    cv.paint(r <= 1.0, np.where(r > 0.82, 45.0, content), 6)
    # aorta: small, contrast-bright, just anterior-left of the spine along the whole volume
    cu = -12.0 + 3.0 * np.sin(2 * np.pi * t + phases[5])
    cv.paint(cv.radius(cu, -20.0, 11.0, 11.0) <= 1.0, 190.0, 5)
    # vertebra: cortical rim, cancellous core and spinous process; discs (unlabelled) every ~30 mm
    disc = np.abs(((t * PHANTOM_SHAPE[0] * PHANTOM_SPACING[0] + 10.0 * jitter[7]) % 30.0) - 15.0) < 3.5
    r = cv.radius(0.0, -52.0, 19.0, 17.0)
    cv.paint((r <= 1.0) & disc, 90.0, 0)
    cv.paint((r <= 1.0) & ~disc, np.where(r > 0.8, 650.0, 230.0), 7)
    cv.paint(cv.radius(0.0, -84.0, 6.0, 15.0) <= 1.0, 500.0, 7)


def make_phantom(seed: int = 0) -> Phantom:
    """Build the phantom: a ``(48, 160, 160)`` CT at ``(4.0, 2.0, 2.0)`` mm with 7 labelled classes.

    The same seed always gives the same arrays; other seeds move and reshape the organs slightly,
    rearrange the bowel and draw new noise. Takes about 0.2 s.

    Args:
        seed: random seed for shape jitter, bowel loops, texture and noise.

    Returns:
        A :class:`Phantom` with image (float32 HU), labels (uint8) and its geometry.
    """
    rng = np.random.default_rng(seed)
    cv = _Canvas(PHANTOM_SHAPE, PHANTOM_SPACING)
    _body(cv)
    _bowel(cv, rng)
    _muscles_and_vessels(cv)
    _organs(cv, rng)
    inside = cv.hu > -950.0
    # partial-volume blur, stronger along z because of the thick slices
    image = gaussian_filter(cv.hu, sigma=(0.6, 0.8, 0.8))
    texture = gaussian_filter(rng.standard_normal(PHANTOM_SHAPE, dtype=np.float32), sigma=(1.5, 5.0, 5.0))
    image += inside * texture * np.float32(_TEXTURE_HU / max(float(texture.std()), 1e-6))
    image += rng.standard_normal(PHANTOM_SHAPE, dtype=np.float32) * np.float32(_NOISE_HU)
    image = np.clip(image, -1024.0, 3071.0).astype(np.float32)

    shape, spacing = PHANTOM_SHAPE, PHANTOM_SPACING
    origin = tuple(-(n - 1) * s / 2.0 for n, s in zip(shape, spacing, strict=True))
    names = dict(enumerate(PHANTOM_CLASSES))
    names.pop(0)
    meta = VolumeMeta.from_grid(
        shape,
        spacing,
        origin,
        class_names=names,
        extra={"generator": "napari_smp.io.phantom", "seed": int(seed)},
    )
    return Phantom(image=image, labels=cv.labels, meta=meta, class_names=list(PHANTOM_CLASSES))
