"""Supplement-style figures of a memory bank: slices x clusters with boxes (Fig. 2), and K over training
(Fig. 1). PNG and SVG, drawn with matplotlib's Agg canvas (no GUI toolkit, no pyplot state), each file
written atomically.
"""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...io.atomic import atomic_write, atomic_write_text
from .cluster_report import ClusterReport

__all__ = ["pick_slices", "parse_slices", "save_cluster_figure", "save_k_curve", "write_cluster_csv", "FORMATS"]

FORMATS = ("png", "svg")


def pick_slices(report: ClusterReport, rows: int = 4) -> list[int]:
    """Up to ``rows`` positions in ``report.slices``, evenly spread, ends included."""
    n = len(report.slices)
    if n <= rows:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, rows)})


def _save(fig: object, stem: Path) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches itself to the figure
    out = []
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        atomic_write(path, lambda tmp, f=fmt: fig.savefig(tmp, format=f, dpi=110))  # type: ignore[attr-defined]
        out.append(path)
    return out


def save_cluster_figure(report: ClusterReport, volume: np.ndarray, stem: str | Path, rows: int = 4,
                        title: str | None = None) -> list[Path]:
    """Slices x clusters: the slice in grey, the cluster's similarity as a heat map over the body, and a
    white box around the cluster's main region; column titles name the cluster's class and purity.

    Args:
        report: ``cluster_report`` output.
        volume: (Z, Y, X) the intensities the report was computed on.
        stem: output path without suffix; ``.png`` and ``.svg`` are written.
        rows: most slices shown.
        title: figure title (default: the module's name).

    Returns:
        The written paths.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    pos = pick_slices(report, rows)
    counts = report.counts()
    clusters = [c for c in range(report.k) if counts[c] > 0] or list(range(report.k))
    fig = Figure(figsize=(1.9 * len(clusters) + 0.4, 1.9 * len(pos) + 0.7), layout="constrained")
    axes = fig.subplots(len(pos), len(clusters), squeeze=False)
    body_vals = volume[report.slices][report.body] if report.body.any() else volume[report.slices]
    lo, hi = np.percentile(body_vals, [1, 99]) if body_vals.size else (0.0, 1.0)
    boxes = {(b.slice, b.cluster): b for b in report.boxes}
    # each cluster's heat map spans its own similarities in the body (cosines differ little between
    # clusters; a common -1..1 scale washes every map out)
    limits = {}
    for c in clusters:
        vals = report.similarity[c][report.body] if report.body.any() else report.similarity[c]
        a, b = np.percentile(vals.astype(np.float32), [2, 98]) if vals.size else (-1.0, 1.0)
        limits[c] = (float(a), float(max(b, a + 1e-3)))
    for r, i in enumerate(pos):
        z = int(report.slices[i])
        for col, c in enumerate(clusters):
            ax = axes[r][col]
            ax.imshow(volume[z], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            sim = np.ma.masked_where(~report.body[i], report.similarity[c, i].astype(np.float32))
            ax.imshow(sim, cmap="magma", alpha=0.6, vmin=limits[c][0], vmax=limits[c][1], interpolation="bilinear")
            box = boxes.get((z, c))
            if box is not None:
                ax.add_patch(Rectangle((box.x0 - 0.5, box.y0 - 0.5), box.x1 - box.x0, box.y1 - box.y0,
                                       fill=False, edgecolor="white", linewidth=1.2))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                pur = report.purity.get("all")
                p = "" if pur is None or not np.isfinite(pur.purity[c]) else f"\npurity {pur.purity[c]:.2f}"
                ax.set_title(f"c{c}: {report.class_name(c)}{p}", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"slice {z}", fontsize=8)
    fig.suptitle(title or f"clusters of {report.module}", fontsize=10)
    return _save(fig, Path(stem))


def save_k_curve(history: Sequence[tuple[int, int]], slots: int, stem: str | Path,
                 warmup_steps: int | None = None) -> list[Path]:
    """K over training steps, with the range [M/4, 3M/4] and M/2 marked (the supplement's Fig. 1).

    Args:
        history: ``[(step, K), ...]`` (``read_k_history``).
        slots: M, memory slots per cluster.
        stem: output path without suffix.
        warmup_steps: marks the end of the warm-up, when given.
    """
    from matplotlib.figure import Figure

    steps = np.array([s for s, _ in history])
    ks = np.array([k for _, k in history])
    fig = Figure(figsize=(5.5, 3.0), layout="constrained")
    ax = fig.subplots()
    ax.plot(steps, ks, lw=0.9, color="#1f4e79", label="K")
    for v, style in ((slots / 4, ":"), (slots / 2, "--"), (3 * slots / 4, ":")):
        ax.axhline(v, color="grey", lw=0.8, ls=style)
    if warmup_steps:
        ax.axvline(warmup_steps, color="#b35900", lw=0.8, ls="-.", label="end of warm-up")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"K (of M = {slots} slots)")
    ax.set_ylim(0, slots)
    tail = ks[len(ks) // 2 :]
    ax.set_title(f"K over training: mean {tail.mean():.1f} over the second half (M/2 = {slots // 2})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, Path(stem))


def write_cluster_csv(report: ClusterReport, path: str | Path) -> Path:
    """``clusters.csv``: one row per cluster (``ClusterReport.rows``), written atomically."""
    header, rows = report.rows()
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def parse_slices(text: str | None, depth: int) -> range:
    """``"A:B"`` (inclusive, either end may be left out) or ``"A"`` -> slice indices of a (depth)-slice volume.

    Raises:
        ValueError: not of that form, or outside the volume (one sentence).
    """
    if text is None:
        return range(depth)
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            first, last = int(a) if a.strip() else 0, int(b) if b.strip() else depth - 1
        else:
            first = last = int(text)
    except ValueError:
        raise ValueError(f"--slices takes A:B or A (slice indices), got {text!r}") from None
    if not 0 <= first <= last < depth:
        raise ValueError(f"--slices {text} lies outside the volume's slices 0..{depth - 1} (or A > B)")
    return range(first, last + 1)
