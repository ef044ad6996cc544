"""Write one named section of docs/benchmarks.md, stamped with the machine, the date and versions.

Every benchmark script calls :func:`write_section` with its own section name; the section is replaced
in place when it exists (between HTML comment markers) and appended otherwise, so scripts can run in
any order without touching each other's results.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import tempfile
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["BENCHMARKS_MD", "cpu_model", "load_line", "machine_line", "write_section"]

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
_TITLE = "# Benchmarks\n\nEach section is written by the script named in it; rerun the script to refresh it.\n"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine_line(packages: tuple[str, ...] = ("numpy", "scipy")) -> str:
    """One Markdown line: CPU, usable cores, OS, date, Python and package versions."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(f"{p} {_version(p)}" for p in packages)
    today = _dt.date.today().isoformat()
    return (
        f"Machine: {cpu_model()}, {cores} cores usable, {platform.system()} {platform.release()}; "
        f"date {today}; Python {platform.python_version()}, {versions}."
    )


def load_line() -> str:
    """The 1-minute load average and how many other processes were busy on a CPU, e.g. ``load 2.31 (3
    other busy processes)``: on a shared machine a timing means little without it."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return "load unknown"
    busy = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] == "R" and int(stat.parent.name) != os.getpid():
            busy += 1
    return f"load {load:.2f} ({busy} other running processes)"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section: {name} -->", f"<!-- end section: {name} -->"


def write_section(
    name: str,
    body: str,
    packages: tuple[str, ...] = ("numpy", "scipy"),
    script: str | None = None,
    path: Path = BENCHMARKS_MD,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """Replace (or append) the section ``name`` of ``path`` with ``body`` and a machine stamp.

    Args:
        name: section title, e.g. ``"Metrics"``; also the marker that finds it again.
        body: Markdown of the results (tables, notes), without the heading.
        packages: distributions whose versions go into the stamp.
        script: how to reproduce, e.g. ``"python benchmarks/metrics.py"``.
        path: the Markdown file (created with a title when missing).
        extra: more ``key: value`` facts for the stamp (e.g. ``{"threads": "1"}``).

    Returns:
        The path written (atomically: temporary file in the same folder, then rename).
    """
    start, end = _markers(name)
    stamp = machine_line(packages)
    if extra:
        stamp += " " + "; ".join(f"{k}: {v}" for k, v in extra.items()) + "."
    how = f"Reproduce: `{script}`.\n\n" if script else ""
    section = f"{start}\n## {name}\n\n{how}{stamp}\n\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else _TITLE
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".benchmarks-", suffix=".md", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text.rstrip("\n") + "\n")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; this is an ordinary document
    os.replace(tmp, path)
    return path
