"""Tables and curves of the effort benchmark (``benchmarks/effort.py --report``) from its JSON lines."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from _report import write_section

__all__ = ["report"]

SECTION = "Effort: a painting of k slices -> the whole volume"
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "images" / "effort.png"
ORDER = ("nearest", "interp", "mci", "propagation", "evidence", "complete", "complete_clusters", "scribbles_evidence",
         "scribbles", "unet", "rf")
LEARNED = ("complete", "complete_clusters", "scribbles", "unet")  # trained for the time budget
HEADINGS = {
    "nearest": "nearest copy",
    "interp": "SD interpolation",
    "mci": "ITK MCI",
    "propagation": "propagation",
    "evidence": "propagation + intensity",
    "complete": "**complete**",
    "complete_clusters": "complete, cluster bank",
    "scribbles": "complete, scribbles",
    "scribbles_evidence": "propagation + intensity, scribbles",
    "unet": "MONAI U-Net",
    "rf": "random forest",
}
CASE_NAMES = {"phantom": "phantom", "dev_ct": "dev CT", "mni": "MNI brain", "lung2": "lung2 lesion",
              "brain1": "brain1 lesion"}  # fmt: skip

Key = tuple[str, int, str]  # (case, k, method)


def _load(path: Path, busy: bool) -> dict[Key, list[dict]]:
    """The newest row of every (case, k, seed, method), grouped over seeds."""
    newest: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if bool(row.get("busy")) == busy:
            newest[(row["case"], row["k"], row["seed"], row["method"])] = row
    grouped: dict[Key, list[dict]] = defaultdict(list)
    for (case, k, _, method), row in sorted(newest.items()):
        grouped[(case, k, method)].append(row)
    return grouped


def _cell(rows: list[dict] | None, best: bool) -> str:
    if not rows:
        return ""
    d = np.array([r["dice"] for r in rows], float)
    text = f"{np.nanmean(d):.3f}" + (f" ± {np.nanstd(d):.3f}" if len(d) > 1 else "") + f" ({len(d)})"
    return f"**{text}**" if best else text


def _table(grouped: dict[Key, list[dict]], k: int, cases: list[str], methods: list[str]) -> list[str]:
    lines = ["| volume | " + " | ".join(HEADINGS[m] for m in methods) + " |", "|---" * (len(methods) + 1) + "|"]
    means: dict[str, list[float]] = defaultdict(list)
    for case in cases:
        row = {m: grouped.get((case, k, m)) for m in methods}
        score = {m: float(np.nanmean([r["dice"] for r in v])) for m, v in row.items() if v}
        # the best is chosen among the methods run on every seed: a one-seed cell is not a mean
        most = max((len(v) for v in row.values() if v), default=0)
        top = max((score[m] for m, v in row.items() if v and len(v) == most), default=np.nan)
        lines.append(f"| {CASE_NAMES.get(case, case)} | "
                     + " | ".join(_cell(row[m], score.get(m) == top) for m in methods) + " |")  # fmt: skip
        for m, v in score.items():
            means[m].append(v)
    complete = [m for m in methods if all((c, k, m) in grouped for c in cases)]
    if complete:
        avg = {m: float(np.mean(means[m])) for m in complete}
        top = max(avg.values())
        cells = [(f"**{avg[m]:.3f}**" if avg[m] == top else f"{avg[m]:.3f}") if m in avg else "" for m in methods]
        lines.append("| mean over volumes | " + " | ".join(cells) + " |")
    return lines


def _seconds(grouped: dict[Key, list[dict]], cases: list[str], methods: list[str]) -> list[str]:
    lines = ["| volume | " + " | ".join(HEADINGS[m] for m in methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for case in cases:
        cells = []
        for m in methods:
            s = [r["seconds"] for (c, _, mm), rows in grouped.items() if c == case and mm == m for r in rows]
            cells.append(f"{np.median(s):.1f}" if s else "")
        lines.append(f"| {CASE_NAMES.get(case, case)} | " + " | ".join(cells) + " |")
    return lines


def _figure(grouped: dict[Key, list[dict]], cases: list[str], methods: list[str], ks: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cases), figsize=(3.2 * len(cases), 3.2), sharey=True, squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        for m in methods:
            pts = [(k, [r["dice"] for r in grouped[(case, k, m)]]) for k in ks if (case, k, m) in grouped]
            if not pts:
                continue
            x = [k for k, _ in pts]
            y = [float(np.nanmean(v)) for _, v in pts]
            e = [float(np.nanstd(v)) for _, v in pts]
            style = {"lw": 2.5} if m in ("complete", "evidence") else {"lw": 1.2, "alpha": 0.8}
            ax.errorbar(x, y, yerr=e, marker="o", ms=3, capsize=2, label=HEADINGS[m].strip("*"), **style)
        ax.set_title(CASE_NAMES.get(case, case))
        ax.set_xlabel("painted slices k")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("Dice, never-painted slices")
    axes[0][0].legend(fontsize=7, loc="lower right")  # the phantom ran every method
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    plt.close(fig)


def report(path: Path) -> None:
    """Write the effort section of docs/benchmarks.md and docs/images/effort.png from ``path``."""
    body: list[str] = []
    for busy in (False, True):
        grouped = _load(path, busy)
        if not grouped:
            continue
        cases = [c for c in CASE_NAMES if any(key[0] == c for key in grouped)]
        methods = [m for m in ORDER if any(key[2] == m for key in grouped)]
        ks = sorted({key[1] for key in grouped})
        rows = [r for v in grouped.values() for r in v]
        budget = sorted({r["budget"] for r in rows if r["method"] in LEARNED})
        loads = [r["load"] for r in rows if "load" in r]
        load = f"1-min load average before each run {np.median(loads):.1f} (median); " if loads else ""
        body.append(f"### {'With a process added to keep one core busy' if busy else 'As the machine was found'}\n")
        body.append(f"CPU: {rows[0]['cpu']}; dates {min(r['date'] for r in rows)}..{max(r['date'] for r in rows)}; "
                    f"budget of the learned methods: {', '.join(f'{b:g} s' for b in budget) or 'none run'}; "
                    f"{load}cells: mean ± std over seeds (seed count). The Dice of the methods without a network does "
                    "not depend on the machine's load, their seconds do; the learned methods' Dice does (a busy "
                    "CPU gives them fewer steps), so read their rows with the load. Bold: the best of the methods run "
                    "on every seed of that row.\n")  # fmt: skip
        for k in ks:
            body.append(f"**k = {k} painted slices**\n")
            body.extend(_table(grouped, k, cases, methods))
            body.append("")
        body.append("Median seconds per run (all k):\n")
        body.extend(_seconds(grouped, cases, methods))
        body.append("")
        if not busy:
            _figure(grouped, cases, methods, ks)
            body.append("![effort curves](images/effort.png)\n")
    write_section(SECTION, "\n".join(body), packages=("numpy", "scipy", "torch", "scikit-image"),
                  script="python benchmarks/effort.py ... ; python benchmarks/effort.py --report")  # fmt: skip
