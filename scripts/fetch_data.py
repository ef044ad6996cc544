"""Fetch the real CT/MRI volumes shipped inside package distributions on PyPI.

* ``fetch_pyradiomics``: the lesion volumes of the pyradiomics 3.0.1 sdist (below).
* ``fetch_mni_brain``: the MNI152 T1 template of the nilearn wheel and a GM/WM tissue map.
* ``fetch_dev_ct``: a 20-slice abdominal CT (DICOM) of the TotalSegmentator 2.18.0 sdist with its
  multi-organ labels, remapped to 8 organs on the CT's grid (the development CT of the few-shot benchmark).

The pyradiomics sdist (BSD-3-Clause) carries five anisotropic volumes with a binary lesion label each
(lung1, lung2, brain1, brain2, breast1; see docs/metrics.md). They are fetched through pip, the
ordinary client of the package registry, checked against a pinned sha256, and only the ten
``data/*_image.nrrd`` / ``data/*_label.nrrd`` files are extracted into a cache outside the repository:
``$NAPARI_SMP_DATA/pyradiomics-3.0.1/`` or ``~/.cache/napari-smp/data/pyradiomics-3.0.1/``.

Run as a script (``python scripts/fetch_data.py``) or import ``fetch_pyradiomics`` from tests and
benchmarks. A second call finds the verified cache and downloads nothing.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and napari_smp are imported where used: the pip part needs only the stdlib
    import numpy as np

    from napari_smp.io import VolumeMeta

__all__ = [
    "CASES",
    "DataFetchError",
    "RegistryUnreachableError",
    "DEV_CT_ORGANS",
    "data_root",
    "dev_ct_dir",
    "fetch_dev_ct",
    "fetch_mni_brain",
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


def _read_manifest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of ``folder/SHA256SUMS``; empty when there is none."""
    manifest = folder / _MANIFEST
    if not manifest.is_file():
        return {}
    return dict(line.split("  ", 1)[::-1] for line in manifest.read_text().splitlines() if line.strip())


def _write_manifest(folder: Path, names: list[str]) -> None:
    """Write ``folder/SHA256SUMS`` for the files ``names`` (paths relative to ``folder``)."""
    lines = [f"{_sha256(folder / name)}  {name}" for name in sorted(names)]
    (folder / _MANIFEST).write_text("\n".join(lines) + "\n")


def _files_match(folder: Path, sums: dict[str, str], names: list[str]) -> bool:
    """True when every one of ``names`` is listed in ``sums`` and the file on disk has that sha256."""
    for name in names:
        path = folder / name
        if name not in sums or not path.is_file() or _sha256(path) != sums[name]:
            return False
    return True


def _cache_is_valid(folder: Path) -> bool:
    """True when every wanted file is present and matches the manifest written at extraction."""
    return _files_match(folder, _read_manifest(folder), _wanted_names())


def _verified(archive: Path, sha256: str) -> Path:
    """``archive`` if its sha256 is the pinned one; a ``DataFetchError`` otherwise (nothing is extracted)."""
    digest = _sha256(archive)
    if digest != sha256:
        raise DataFetchError(f"{archive.name} has sha256 {digest}, expected {sha256}; not using it.")
    return archive


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


def _pip_sdist(dest: Path, requirement: str, filename: str) -> Path:
    """Download the source distribution ``requirement`` with pip into ``dest``; return ``dest/filename``.

    ``--no-build-isolation``: pip prepares the sdist's metadata with this interpreter's setuptools
    (pyradiomics' setup.py also imports numpy), instead of installing build tools into a fresh env.
    """
    proc = _pip([
        "download", "--no-deps", "--no-binary=:all:", "--no-build-isolation",
        "--disable-pip-version-check", "-d", str(dest), requirement,
    ])  # fmt: skip
    sdist = dest / filename
    # pip may fail after the download while building metadata; the archive itself is all we need
    if sdist.is_file():
        return sdist
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    message = f"pip could not download {filename}: " + " | ".join(tail)
    if any(hint in (proc.stderr + proc.stdout) for hint in _NETWORK_HINTS):
        raise RegistryUnreachableError(message)
    raise DataFetchError(message)


def _download_sdist(dest: Path) -> Path:
    """Download the pyradiomics sdist with pip into ``dest`` and return its path."""
    return _pip_sdist(dest, f"pyradiomics=={PYRADIOMICS_VERSION}", SDIST_NAME)


def _replace_atomically(target: Path, fill: Callable[[Path], None]) -> None:
    """Let ``fill`` write a staging folder beside ``target``, then rename it to ``target``.

    A reader never sees half a cache: when ``fill`` fails, the staging folder goes and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        fill(staging)
        staging.chmod(0o755)  # mkdtemp creates 0700; the cache is ordinary user data
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _extract(sdist: Path, target: Path) -> None:
    """Extract the wanted NRRD files into ``target`` atomically (temporary folder, then rename)."""
    wanted = set(_wanted_names())

    def fill(staging: Path) -> None:
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
        _write_manifest(staging, sorted(wanted))

    _replace_atomically(target, fill)


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
        sdist = _verified(_download_sdist(Path(tmp)), SDIST_SHA256)
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


TOTALSEG_VERSION = "2.18.0"
TOTALSEG_SDIST = f"totalsegmentator-{TOTALSEG_VERSION}.tar.gz"
TOTALSEG_SHA256 = "5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03"
_TS_ROOT = f"totalsegmentator-{TOTALSEG_VERSION}"
# the only members used (research/data.md): the package's other reference files are kept for independent checks
_TS_DICOM_DIR = "example_ct_dicom"
_TS_SEG = "example_seg_dicom.nii.gz"
_TS_REFERENCE = f"{_TS_ROOT}/tests/reference_files/"
_TS_CLASS_MAP = f"{_TS_ROOT}/totalsegmentator/map_to_binary.py"  # read for class names, never extracted
DEV_CT_DICOM_FILES = 20
# DICOM file names of the series: UIDs, no separators; "." and ".." can never match
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: the organs of the dev CT, label 1..8 in this order (TotalSegmentator "total" names). The 20 slices are
#: upper abdomen: no kidney or gallbladder in them, pancreas only on the 4 lowest slices (1327 voxels), so it
#: is left out (a few evenly spread painted slices would never show it); bones, muscles and the rest are
#: background.
DEV_CT_ORGANS = (
    "spleen",
    "liver",
    "stomach",
    "adrenal_gland_right",
    "colon",
    "aorta",
    "inferior_vena_cava",
    "portal_vein_and_splenic_vein",
)
DEV_CT_IMAGE = "dev_ct_image.nii.gz"
DEV_CT_LABELS = "dev_ct_labels.nii.gz"
DEV_CT_CLASSES = "dev_ct_labels.json"  # napari_smp.io.read_labels reads the class names from it
_DEV_CT_MIN_VOXELS = 1000  # an organ with fewer voxels than this in the 20 slices is no use to a benchmark


def dev_ct_dir() -> Path:
    """Folder holding the TotalSegmentator development CT (it may not exist yet)."""
    return data_root() / f"totalsegmentator-{TOTALSEG_VERSION}-dev-ct"


def _download_totalseg(dest: Path) -> Path:
    """Download the TotalSegmentator sdist with pip into ``dest`` and return its path."""
    return _pip_sdist(dest, f"totalsegmentator=={TOTALSEG_VERSION}", TOTALSEG_SDIST)


def _dev_ct_member(name: str) -> str | None:
    """Cache path of archive member ``name`` when it is one of the wanted raw files, else None.

    Member names are compared as exact strings, so ``..``, absolute paths, ``./`` detours and files in
    other folders never match.
    """
    if name == _TS_REFERENCE + _TS_SEG:
        return _TS_SEG
    prefix = f"{_TS_REFERENCE}{_TS_DICOM_DIR}/"
    if name.startswith(prefix):
        file = name[len(prefix) :]
        if _SAFE_FILE_NAME.match(file):
            return f"{_TS_DICOM_DIR}/{file}"
    return None


def _total_class_names(source: str) -> dict[int, str]:
    """``class_map["total"]`` of TotalSegmentator's map_to_binary.py, read without running the file.

    Only literal values are evaluated (``ast.literal_eval``): the archive's code is never executed.
    """
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "class_map" for t in node.targets):
            if isinstance(node.value, ast.Dict):
                for key, value in zip(node.value.keys, node.value.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "total":
                        return {int(k): str(v) for k, v in ast.literal_eval(value).items()}
    raise DataFetchError(f"{TOTALSEG_SDIST}: no class_map['total'] in {_TS_CLASS_MAP}.")


def _extract_dev_ct_raw(sdist: Path, staging: Path) -> dict[int, str]:
    """Copy the DICOM series and its label map out of ``sdist`` into ``staging``; return the class names.

    Returns:
        TotalSegmentator "total" label value -> class name.
    """
    names_source = None
    (staging / _TS_DICOM_DIR).mkdir()
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():  # links and devices never, whatever their name
                continue
            if member.name == _TS_CLASS_MAP:
                with tar.extractfile(member) as src:  # type: ignore[union-attr]
                    names_source = src.read().decode("utf-8")
                continue
            out = _dev_ct_member(member.name)
            if out is not None:
                with tar.extractfile(member) as src, open(staging / out, "wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)
    n_dicom = len(list((staging / _TS_DICOM_DIR).iterdir()))
    if n_dicom != DEV_CT_DICOM_FILES or not (staging / _TS_SEG).is_file() or names_source is None:
        raise DataFetchError(
            f"{TOTALSEG_SDIST} lacks the expected files: {n_dicom} of {DEV_CT_DICOM_FILES} DICOM slices, "
            f"label map {'found' if (staging / _TS_SEG).is_file() else 'missing'}, "
            f"class names {'found' if names_source else 'missing'}."
        )
    return _total_class_names(names_source)


def _remap_organs(seg: np.ndarray, total_names: dict[int, str]) -> np.ndarray:
    """Keep the :data:`DEV_CT_ORGANS` of a TotalSegmentator label map as labels 1..N, the rest as 0.

    Args:
        seg: (Z, Y, X) TotalSegmentator "total" label values.
        total_names: label value -> class name.
    Returns:
        (Z, Y, X) uint8, label ``i`` = ``DEV_CT_ORGANS[i - 1]``.
    """
    import numpy as np

    ids = {name: value for value, name in total_names.items()}
    missing = [organ for organ in DEV_CT_ORGANS if organ not in ids]
    if missing:
        raise DataFetchError(f"{TOTALSEG_SDIST}: class_map['total'] has no {missing}.")
    out = np.zeros(seg.shape, dtype=np.uint8)
    for new, organ in enumerate(DEV_CT_ORGANS, start=1):
        out[seg == ids[organ]] = new
    return out


def _labels_on_grid(path: Path, shape: tuple[int, ...], meta: VolumeMeta) -> np.ndarray:
    """Read the label map ``path`` as (Z, Y, X) and make sure it lies on the image grid ``meta``.

    Both are in canonical RAS+ order after reading, whatever voxel order each file stores; equal
    shapes and affines mean voxel ``(z, y, x)`` of one is voxel ``(z, y, x)`` of the other.
    """
    from napari_smp.io import read_labels

    seg, seg_meta = read_labels(path)
    if seg.shape != tuple(shape) or not meta.same_grid(seg_meta):
        raise DataFetchError(
            f"{path.name} is not on the image's grid: shape {seg.shape} vs {tuple(shape)}, "
            f"affine\n{seg_meta.affine}\nvs\n{meta.affine}"
        )
    return seg


def _organ_summary(labels: np.ndarray) -> dict[str, dict[str, object]]:
    """Per organ of a remapped label map (Z, Y, X): voxel count and the slices that hold it."""
    import numpy as np

    summary = {}
    for value, organ in enumerate(DEV_CT_ORGANS, start=1):
        mask = labels == value
        slices = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
        summary[organ] = {"label": value, "voxels": int(mask.sum()), "slices": slices.tolist()}
    return summary


def _derive_dev_ct(folder: Path, total_names: dict[int, str]) -> list[str]:
    """Write the benchmark's CT and 8-organ label map, both on the CT's grid, into ``folder``.

    The CT is read from the DICOM series as ``napari_smp.io.read_volume`` reads it and saved as NIfTI
    (a faster read, no DICOM reader needed later). The label NIfTI may be stored in another voxel order
    than the series (it is: its rows run the other way); both are read into the canonical (Z, Y, X)
    RAS+ array, so the label map is used only when its canonical grid equals the CT's (same affine).

    Returns:
        The file names written (relative to ``folder``).
    """
    from napari_smp.io import read_volume, write_labels, write_volume

    image, meta = read_volume(folder / _TS_DICOM_DIR)
    labels = _remap_organs(_labels_on_grid(folder / _TS_SEG, image.shape, meta), total_names)
    summary = _organ_summary(labels)
    small = {organ: s["voxels"] for organ, s in summary.items() if s["voxels"] < _DEV_CT_MIN_VOXELS}
    if small:
        raise DataFetchError(f"{_TS_SEG}: too few voxels for {small}; the organ choice no longer fits.")
    write_volume(folder / DEV_CT_IMAGE, image, meta)
    again, again_meta = read_volume(folder / DEV_CT_IMAGE)
    # the benchmark reads the NIfTI: it must give exactly the array and grid the DICOM series gave
    if again.dtype != image.dtype or not (again == image).all() or not again_meta.same_grid(meta):
        raise DataFetchError(f"{DEV_CT_IMAGE} does not read back as the DICOM series did.")
    write_labels(folder / DEV_CT_LABELS, labels, meta)
    doc = {
        "class_names": {str(s["label"]): organ for organ, s in summary.items()},
        "organs": summary,
        "source": (
            f"TotalSegmentator {TOTALSEG_VERSION} sdist, tests/reference_files/{_TS_SEG}: the 'total' model's "
            "output (silver standard, not manual); other classes set to background"
        ),
        "totalsegmentator_ids": {organ: next(v for v, n in total_names.items() if n == organ) for organ in summary},
    }
    text = json.dumps(doc, indent=1)
    # slice lists on one line each: the file stays readable
    text = re.sub(r"\[\s*(\d[\d,\s]*?)\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    (folder / DEV_CT_CLASSES).write_text(text + "\n", encoding="utf-8")
    return [DEV_CT_IMAGE, DEV_CT_LABELS, DEV_CT_CLASSES]


def _dev_ct_cache_is_valid(folder: Path) -> bool:
    """True when the manifest lists the 20 slices, the label map and the derived files, all match, and the
    series folder holds nothing else."""
    sums = _read_manifest(folder)
    fixed = {_TS_SEG, DEV_CT_IMAGE, DEV_CT_LABELS, DEV_CT_CLASSES}
    dicom = [n for n in sums if n.startswith(f"{_TS_DICOM_DIR}/") and _SAFE_FILE_NAME.match(n.split("/", 1)[1])]
    if len(dicom) != DEV_CT_DICOM_FILES or set(sums) != fixed | set(dicom) or not (folder / _TS_DICOM_DIR).is_dir():
        return False
    # the series folder is read as a whole: a file not in the manifest would change what it gives
    on_disk = {f"{_TS_DICOM_DIR}/{p.name}" for p in (folder / _TS_DICOM_DIR).iterdir()}
    if on_disk != set(dicom):
        return False
    return _files_match(folder, sums, sorted(sums))


def fetch_dev_ct(force: bool = False) -> Path:
    """Make sure the TotalSegmentator 2.18.0 development CT is cached and verified; return its folder.

    Only ``tests/reference_files/example_ct_dicom/`` (20 DICOM slices) and
    ``tests/reference_files/example_seg_dicom.nii.gz`` are taken from the sdist; class names are read
    from ``totalsegmentator/map_to_binary.py`` inside the archive.

    Args:
        force: download and extract again even when a valid cache exists.

    Returns:
        Folder with ``example_ct_dicom/``, ``example_seg_dicom.nii.gz`` (raw), ``dev_ct_image.nii.gz``
        (the CT, 20 x 512 x 512 int16 HU), ``dev_ct_labels.nii.gz`` (:data:`DEV_CT_ORGANS` as 1..8 on the
        CT's grid), ``dev_ct_labels.json`` (class names, voxel counts, slices) and ``SHA256SUMS``.

    Raises:
        RegistryUnreachableError: pip could not reach the package index.
        DataFetchError: the download failed otherwise, the sha256 did not match, or the content is not
            what the organ choice expects.
    """
    target = dev_ct_dir()
    if not force and _dev_ct_cache_is_valid(target):
        return target
    with tempfile.TemporaryDirectory(prefix="napari-smp-fetch-") as tmp:
        sdist = _verified(_download_totalseg(Path(tmp)), TOTALSEG_SHA256)

        def fill(staging: Path) -> None:
            total_names = _extract_dev_ct_raw(sdist, staging)
            derived = _derive_dev_ct(staging, total_names)
            raw = [_TS_SEG] + [f"{_TS_DICOM_DIR}/{p.name}" for p in (staging / _TS_DICOM_DIR).iterdir()]
            _write_manifest(staging, raw + derived)

        _replace_atomically(target, fill)
    return target


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Fetch the real data of the tests and benchmarks (pyradiomics lesions, the MNI brain, the "
        "TotalSegmentator dev CT) into the cache, checking every sha256; prints each folder.",
        epilog="Cache: $NAPARI_SMP_DATA or ~/.cache/napari-smp/data.",
    )
    parser.add_argument("--force", action="store_true", help="download and extract again even when cached")
    force = parser.parse_args(argv).force
    try:
        for fetch in (fetch_pyradiomics, fetch_mni_brain, fetch_dev_ct):
            print(fetch(force=force), flush=True)
    except DataFetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
