"""Fetch the real CT/MRI test volumes shipped inside the pyradiomics 3.0.1 source distribution.

The pyradiomics sdist (BSD-3-Clause) carries five anisotropic volumes with a binary lesion label each
(lung1, lung2, brain1, brain2, breast1; see docs/metrics.md). They are fetched through pip, the
ordinary client of the package registry, checked against a pinned sha256, and only the ten
``data/*_image.nrrd`` / ``data/*_label.nrrd`` files are extracted into a cache outside the repository:
``$NAPARI_SMP_DATA/pyradiomics-3.0.1/`` or ``~/.cache/napari-smp/data/pyradiomics-3.0.1/``.

Run as a script (``python scripts/fetch_data.py``) or import ``fetch_pyradiomics`` from tests and
benchmarks. A second call finds the verified cache and downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = [
    "CASES",
    "DataFetchError",
    "RegistryUnreachableError",
    "data_root",
    "fetch_pyradiomics",
    "pyradiomics_dir",
]

PYRADIOMICS_VERSION = "3.0.1"
SDIST_NAME = f"pyradiomics-{PYRADIOMICS_VERSION}.tar.gz"
SDIST_SHA256 = "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5"
CASES = ("lung1", "lung2", "brain1", "brain2", "breast1")
_MANIFEST = "SHA256SUMS"
# pip's wording when the index cannot be reached (offline machine, proxy, DNS)
_NETWORK_HINTS = (
    "NewConnectionError",
    "Max retries exceeded",
    "Could not fetch URL",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "ConnectionError",
    "ReadTimeoutError",
)


class DataFetchError(RuntimeError):
    """The data could not be fetched or did not verify."""


class RegistryUnreachableError(DataFetchError):
    """pip could not reach the package index (tests skip on this one only)."""


def data_root() -> Path:
    """Cache folder for all fetched data: ``$NAPARI_SMP_DATA`` or ``~/.cache/napari-smp/data``."""
    env = os.environ.get("NAPARI_SMP_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "napari-smp" / "data"


def pyradiomics_dir() -> Path:
    """Folder holding the extracted pyradiomics volumes (it may not exist yet)."""
    return data_root() / f"pyradiomics-{PYRADIOMICS_VERSION}"


def _wanted_names() -> list[str]:
    return [f"{case}_{kind}.nrrd" for case in CASES for kind in ("image", "label")]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_is_valid(folder: Path) -> bool:
    """True when every wanted file is present and matches the manifest written at extraction."""
    manifest = folder / _MANIFEST
    if not manifest.is_file():
        return False
    sums = dict(line.split("  ", 1)[::-1] for line in manifest.read_text().splitlines() if line.strip())
    for name in _wanted_names():
        path = folder / name
        if name not in sums or not path.is_file() or _sha256(path) != sums[name]:
            return False
    return True


def _pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pip ARGS`` and capture its output as text, whatever the machine's locale.

    In the C locale (``LANG``/``LC_ALL`` unset or ``C``, ``PYTHONUTF8=0``) Python's default encoding is
    ASCII: pip's ``…`` would fail both in the child's output and in our decoding of it. The child is
    told to write UTF-8 and we read UTF-8, replacing what still does not decode.
    """
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, encoding="utf-8", errors="replace",
        env=env,
    )


def _download_sdist(dest: Path) -> Path:
    """Download the sdist with pip into ``dest`` and return its path.

    ``--no-build-isolation`` is needed because pyradiomics' setup.py imports numpy while pip prepares
    metadata; this interpreter already has numpy and setuptools.
    """
    proc = _pip([
        "download", "--no-deps", "--no-binary=:all:", "--no-build-isolation",
        "--disable-pip-version-check", "-d", str(dest), f"pyradiomics=={PYRADIOMICS_VERSION}",
    ])  # fmt: skip
    sdist = dest / SDIST_NAME
    # pip may fail after the download while building metadata; the archive itself is all we need
    if sdist.is_file():
        return sdist
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    message = f"pip could not download {SDIST_NAME}: " + " | ".join(tail)
    if any(hint in (proc.stderr + proc.stdout) for hint in _NETWORK_HINTS):
        raise RegistryUnreachableError(message)
    raise DataFetchError(message)


def _extract(sdist: Path, target: Path) -> None:
    """Extract the wanted NRRD files into ``target`` atomically (temporary folder, then rename)."""
    wanted = set(_wanted_names())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                # only pyradiomics-3.0.1/data/<name>.nrrd, never anything with another path shape
                if member.isfile() and len(parts) == 3 and parts[1] == "data" and parts[2] in wanted:
                    with tar.extractfile(member) as src, open(staging / parts[2], "wb") as dst:  # type: ignore[union-attr]
                        shutil.copyfileobj(src, dst)
        missing = wanted - {p.name for p in staging.iterdir()}
        if missing:
            raise DataFetchError(f"{SDIST_NAME} lacks the expected files {sorted(missing)}.")
        lines = [f"{_sha256(staging / name)}  {name}" for name in sorted(wanted)]
        (staging / _MANIFEST).write_text("\n".join(lines) + "\n")
        staging.chmod(0o755)  # mkdtemp creates 0700; the cache is ordinary user data
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def fetch_pyradiomics(force: bool = False) -> Path:
    """Make sure the pyradiomics 3.0.1 volumes are cached and verified; return their folder.

    Args:
        force: download and extract again even when a valid cache exists.

    Returns:
        Folder with ``{lung1,lung2,brain1,brain2,breast1}_{image,label}.nrrd`` and a ``SHA256SUMS``.

    Raises:
        RegistryUnreachableError: pip could not reach the package index.
        DataFetchError: the download failed otherwise, or the archive's sha256 did not match.
    """
    target = pyradiomics_dir()
    if not force and _cache_is_valid(target):
        return target
    with tempfile.TemporaryDirectory(prefix="napari-smp-fetch-") as tmp:
        sdist = _download_sdist(Path(tmp))
        digest = _sha256(sdist)
        if digest != SDIST_SHA256:
            raise DataFetchError(f"{SDIST_NAME} has sha256 {digest}, expected {SDIST_SHA256}; not using it.")
        _extract(sdist, target)
    return target


NILEARN_VERSION = "0.14.1"
NILEARN_WHEEL = f"nilearn-{NILEARN_VERSION}-py3-none-any.whl"
NILEARN_SHA256 = "725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a"
_MNI = "nilearn/datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


def fetch_mni_brain(force: bool = False) -> Path:
    """The MNI ICBM152 2009a T1 template and a 3-class tissue map made from its GM/WM maps.

    The nilearn wheel bundles the template (research/data.md, B). Labels: 0 outside the brain or CSF,
    1 grey matter, 2 white matter, by the largest of (1 - gm - wm, gm, wm) inside the brain mask.
    A population average, not a subject: edges are smoother than in a scan.

    Returns:
        Folder with ``mni_t1.nii.gz`` and ``mni_tissue_labels.nii.gz`` (RAS, 1 mm).
    """
    import zipfile

    import nibabel as nib
    import numpy as np

    target = data_root() / f"nilearn-{NILEARN_VERSION}-mni"
    t1, lab = target / "mni_t1.nii.gz", target / "mni_tissue_labels.nii.gz"
    if not force and t1.is_file() and lab.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="napari-smp-fetch-") as tmp:
        proc = _pip(["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                     "-d", tmp, f"nilearn=={NILEARN_VERSION}"])  # fmt: skip
        wheel = Path(tmp) / NILEARN_WHEEL
        if not wheel.is_file():
            raise DataFetchError(f"pip could not download {NILEARN_WHEEL}: {proc.stderr.strip()[-300:]}")
        if _sha256(wheel) != NILEARN_SHA256:
            raise DataFetchError(f"{NILEARN_WHEEL} does not have the pinned sha256; not using it.")
        with zipfile.ZipFile(wheel) as zf:
            for part in ("t1", "gm", "wm"):
                (Path(tmp) / f"{part}.nii.gz").write_bytes(zf.read(_MNI.format(part)))
        images = {p: nib.load(Path(tmp) / f"{p}.nii.gz") for p in ("t1", "gm", "wm")}
        gm, wm = (np.asarray(images[p].dataobj, dtype=np.float32) / 255 for p in ("gm", "wm"))
        brain = np.asarray(images["t1"].dataobj) > 0
        tissue = np.argmax(np.stack([1 - gm - wm, gm, wm]), axis=0).astype(np.uint8) * brain
        target.mkdir(parents=True, exist_ok=True)
        nib.save(images["t1"], Path(tmp) / t1.name)
        nib.save(nib.Nifti1Image(tissue, images["t1"].affine), Path(tmp) / lab.name)
        for f in (t1, lab):  # rename into place: a reader never sees half a file
            os.replace(Path(tmp) / f.name, f)
    return target


def main() -> int:
    try:
        folder = fetch_pyradiomics(force="--force" in sys.argv[1:])
        print(fetch_mni_brain(force="--force" in sys.argv[1:]))
    except DataFetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
