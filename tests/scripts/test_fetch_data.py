"""scripts/fetch_data.py without the network: cache validation, checksum and extraction filter."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import pytest


@pytest.fixture
def fetch(monkeypatch, tmp_path, load_fetch_module):
    module = load_fetch_module()
    monkeypatch.setenv("NAPARI_SMP_DATA", str(tmp_path / "cache"))
    return module


def _fake_sdist(path: Path, names: list[str]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name in names:
            data = name.encode() * 3
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wanted(fetch) -> list[str]:
    return [
        f"pyradiomics-3.0.1/data/{case}_{kind}.nrrd" for case in fetch.CASES for kind in ("image", "label")
    ]


def test_extracts_only_the_volumes_then_reuses_the_cache(fetch, monkeypatch) -> None:
    extras = ["pyradiomics-3.0.1/setup.py", "pyradiomics-3.0.1/data/baseline/x.nrrd", "../evil_label.nrrd"]
    calls = []

    def fake_download(dest: Path) -> Path:
        calls.append(dest)
        sdist = dest / fetch.SDIST_NAME
        monkeypatch.setattr(fetch, "SDIST_SHA256", _fake_sdist(sdist, _wanted(fetch) + extras))
        return sdist

    monkeypatch.setattr(fetch, "_download_sdist", fake_download)
    folder = fetch.fetch_pyradiomics()
    assert folder == fetch.data_root() / "pyradiomics-3.0.1"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [Path(n).name for n in _wanted(fetch)] + ["SHA256SUMS"]
    )
    assert (folder / "lung2_label.nrrd").read_bytes() == b"pyradiomics-3.0.1/data/lung2_label.nrrd" * 3
    assert fetch.fetch_pyradiomics() == folder
    assert len(calls) == 1  # the second call found the verified cache
    (folder / "brain1_image.nrrd").write_bytes(b"tampered")
    fetch.fetch_pyradiomics()
    assert len(calls) == 2


def test_wrong_checksum_is_refused(fetch, monkeypatch) -> None:
    def fake_download(dest: Path) -> Path:
        sdist = dest / fetch.SDIST_NAME
        _fake_sdist(sdist, _wanted(fetch))
        return sdist

    monkeypatch.setattr(fetch, "_download_sdist", fake_download)
    with pytest.raises(fetch.DataFetchError, match="sha256"):
        fetch.fetch_pyradiomics()
    assert not (fetch.data_root() / "pyradiomics-3.0.1").exists()


def test_pip_output_with_non_ascii_text_is_read_in_the_c_locale(tmp_path) -> None:
    """pip's ``…`` must not crash the fetch when the machine's locale is C (ASCII).

    A stand-in ``pip`` package first on ``PYTHONPATH`` writes UTF-8 bytes and downloads nothing; the
    fetch, run in a child Python whose default encoding is ASCII, must report that as a
    ``DataFetchError`` quoting pip's words, not die in ``UnicodeDecodeError``.
    """
    import os
    import subprocess
    import sys

    fake = tmp_path / "fake" / "pip"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        "import sys\n"
        "sys.stderr.buffer.write('ERROR: Collecting pyradiomics \\u2026 nothing here\\n'.encode('utf-8'))\n"
        "sys.exit(1)\n"
    )
    script = Path(__file__).resolve().parents[2] / "scripts" / "fetch_data.py"
    code = (
        "import importlib.util, locale, sys\n"
        "assert locale.getpreferredencoding(False).lower() in ('ascii', 'ansi_x3.4-1968'), "
        "locale.getpreferredencoding(False)\n"
        f"spec = importlib.util.spec_from_file_location('fetch', {str(script)!r})\n"
        "fetch = importlib.util.module_from_spec(spec); spec.loader.exec_module(fetch)\n"
        "try:\n"
        "    fetch.fetch_pyradiomics()\n"
        "except fetch.DataFetchError as err:\n"
        "    print('refused:', ascii(str(err)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONIOENCODING="",
               PYTHONPATH=str(fake.parent), NAPARI_SMP_DATA=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8",
                          errors="replace", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused:" in proc.stdout and "\\u2026 nothing here" in proc.stdout


# --- TotalSegmentator development CT -------------------------------------------------------------------

_TS = "totalsegmentator-2.18.0"
_REF = f"{_TS}/tests/reference_files"
_CLASS_MAP_PY = (
    "import os\n"
    "class_map = {\n"
    "    'total_v1': {1: 'spleen'},\n"
    "    'total': {1: 'spleen', 5: 'liver', 6: 'stomach', 8: 'adrenal_gland_right', 20: 'colon',\n"
    "              52: 'aorta', 63: 'inferior_vena_cava', 64: 'portal_vein_and_splenic_vein'},\n"
    "}\n"
    "os.environ['NAPARI_SMP_RAN_ARCHIVE_CODE'] = '1'\n"  # the fetch must never execute this file
)
_DICOM_MEMBERS = [f"{_REF}/example_ct_dicom/CT.1.2.{i:02d}" for i in range(20)]
_DEV_WANTED = [*_DICOM_MEMBERS, f"{_REF}/example_seg_dicom.nii.gz"]
_DEV_DECOYS = [
    f"{_REF}/example_ct.nii.gz",  # other reference files: kept for independent checks
    f"{_REF}/example_seg.nii.gz",
    f"{_REF}/example_ct_sm.nii.gz",
    f"{_REF}/example_seg_dicom.nii.gz.orig",
    f"{_REF}/example_ct_dicom/sub/CT.9",
    f"{_REF}/example_ct_dicom/../example_ct.nii.gz",
    f"{_REF}/example_ct_dicom/..",
    f"./{_REF}/example_seg_dicom.nii.gz",
    f"/{_REF}/example_seg_dicom.nii.gz",
    f"{_TS}/tests/test_end_to_end.py",
    "../evil",
    f"{_REF}/example_ct_dicom/../../../../evil",
]


def _fake_totalseg(path: Path) -> str:
    """A tar.gz holding the wanted members, the class map, decoys and a symlink; returns its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for name in _DEV_WANTED + _DEV_DECOYS:
            data = name.encode() * 3
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        code = _CLASS_MAP_PY.encode()
        info = tarfile.TarInfo(f"{_TS}/totalsegmentator/map_to_binary.py")
        info.size = len(code)
        tar.addfile(info, io.BytesIO(code))
        link = tarfile.TarInfo(f"{_REF}/example_ct_dicom/CT.link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dev_fetch(fetch, monkeypatch):
    """The fetch module with a fake sdist download and a stand-in for the DICOM-reading derivation."""
    fetch.calls, fetch.derived_names = [], []

    def fake_download(dest: Path) -> Path:
        fetch.calls.append(dest)
        sdist = dest / fetch.TOTALSEG_SDIST
        monkeypatch.setattr(fetch, "TOTALSEG_SHA256", _fake_totalseg(sdist))
        return sdist

    def fake_derive(folder: Path, total_names: dict[int, str]) -> list[str]:
        fetch.derived_names.append(total_names)
        for name in (fetch.DEV_CT_IMAGE, fetch.DEV_CT_LABELS, fetch.DEV_CT_CLASSES):
            (folder / name).write_bytes(name.encode())
        return [fetch.DEV_CT_IMAGE, fetch.DEV_CT_LABELS, fetch.DEV_CT_CLASSES]

    monkeypatch.setattr(fetch, "_download_totalseg", fake_download)
    monkeypatch.setattr(fetch, "_derive_dev_ct", fake_derive)
    return fetch


def _all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def test_dev_ct_extracts_only_the_series_and_its_labels(dev_fetch, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NAPARI_SMP_RAN_ARCHIVE_CODE", raising=False)
    folder = dev_fetch.fetch_dev_ct()
    assert folder == dev_fetch.data_root() / "totalsegmentator-2.18.0-dev-ct"
    dicom = [f"example_ct_dicom/CT.1.2.{i:02d}" for i in range(20)]
    derived = ["dev_ct_image.nii.gz", "dev_ct_labels.json", "dev_ct_labels.nii.gz"]
    assert _all_files(folder) == sorted([*dicom, "example_seg_dicom.nii.gz", "SHA256SUMS", *derived])
    assert (folder / "example_seg_dicom.nii.gz").read_bytes() == f"{_REF}/example_seg_dicom.nii.gz".encode() * 3
    assert (folder / dicom[7]).read_bytes() == _DICOM_MEMBERS[7].encode() * 3
    # nothing escaped the cache folder, and the class map was parsed, not run
    assert sorted(p.name for p in dev_fetch.data_root().iterdir()) == [folder.name]
    assert not (tmp_path / "evil").exists() and not (tmp_path / "cache" / "evil").exists()
    assert "NAPARI_SMP_RAN_ARCHIVE_CODE" not in __import__("os").environ
    assert dev_fetch.derived_names[0][64] == "portal_vein_and_splenic_vein"
    assert len(dev_fetch.derived_names[0]) == 8  # class_map["total"], not "total_v1"


def test_dev_ct_cache_is_reused_and_refetched_when_tampered(dev_fetch) -> None:
    folder = dev_fetch.fetch_dev_ct()
    assert dev_fetch.fetch_dev_ct() == folder
    assert len(dev_fetch.calls) == 1  # the second call found the verified cache
    (folder / "example_ct_dicom" / "CT.1.2.03").write_bytes(b"tampered")
    dev_fetch.fetch_dev_ct()
    assert len(dev_fetch.calls) == 2
    (folder / "dev_ct_labels.nii.gz").write_bytes(b"tampered")
    dev_fetch.fetch_dev_ct()
    assert len(dev_fetch.calls) == 3
    (folder / "example_ct_dicom" / "CT.1.2.11").unlink()  # a missing slice, manifest untouched
    dev_fetch.fetch_dev_ct()
    assert len(dev_fetch.calls) == 4
    (folder / "example_ct_dicom" / "CT.1.2.99").write_bytes(b"extra")  # the series would read differently
    dev_fetch.fetch_dev_ct()
    assert len(dev_fetch.calls) == 5
    assert not (folder / "example_ct_dicom" / "CT.1.2.99").exists()
    dev_fetch.fetch_dev_ct(force=True)
    assert len(dev_fetch.calls) == 6
    shutil.rmtree(folder / "example_ct_dicom")  # the whole series gone, manifest untouched
    dev_fetch.fetch_dev_ct()
    assert len(dev_fetch.calls) == 7 and len(list((folder / "example_ct_dicom").iterdir())) == 20


def test_dev_ct_wrong_checksum_is_refused(dev_fetch, monkeypatch) -> None:
    def fake_download(dest: Path) -> Path:
        sdist = dest / dev_fetch.TOTALSEG_SDIST
        _fake_totalseg(sdist)
        return sdist

    monkeypatch.setattr(dev_fetch, "_download_totalseg", fake_download)
    with pytest.raises(dev_fetch.DataFetchError, match="sha256"):
        dev_fetch.fetch_dev_ct()
    assert not dev_fetch.dev_ct_dir().exists()


def test_dev_ct_incomplete_archive_leaves_no_cache(dev_fetch, monkeypatch) -> None:
    def fake_download(dest: Path) -> Path:
        sdist = dest / dev_fetch.TOTALSEG_SDIST
        with tarfile.open(sdist, "w:gz") as tar:
            for name in _DICOM_MEMBERS[:19]:  # one slice short, no label map, no class map
                info = tarfile.TarInfo(name)
                tar.addfile(info, io.BytesIO(b""))
        monkeypatch.setattr(dev_fetch, "TOTALSEG_SHA256", hashlib.sha256(sdist.read_bytes()).hexdigest())
        return sdist

    monkeypatch.setattr(dev_fetch, "_download_totalseg", fake_download)
    with pytest.raises(dev_fetch.DataFetchError, match="19 of 20 DICOM slices"):
        dev_fetch.fetch_dev_ct()
    assert not dev_fetch.dev_ct_dir().exists()
    assert not list(dev_fetch.data_root().glob(".staging-*"))


def test_class_names_are_read_from_literals_only(fetch) -> None:
    names = fetch._total_class_names(_CLASS_MAP_PY)
    assert names[1] == "spleen" and names[63] == "inferior_vena_cava"
    with pytest.raises(fetch.DataFetchError, match="class_map"):
        fetch._total_class_names("class_map = {'total_v1': {1: 'spleen'}}\n")


def _nifti(path: Path, data, affine) -> None:
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, affine), str(path))


def test_labels_stored_in_another_voxel_order_land_on_the_image_grid(fetch, tmp_path) -> None:
    """The label file may run its rows the other way than the image (the real one does)."""
    import numpy as np

    from napari_smp.io import read_volume

    rng = np.random.default_rng(0)
    ct = rng.integers(-1000, 1000, size=(6, 5, 4)).astype(np.int16)  # file order (i, j, k)
    seg = rng.integers(0, 3, size=(6, 5, 4)).astype(np.uint8)
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])
    affine[:3, 3] = (40.0, 30.0, -100.0)
    _nifti(tmp_path / "ct.nii.gz", ct, affine)
    # the same world grid with j reversed: flip the rows and move the origin to the last row
    flipped = affine.copy()
    flipped[:, 1] *= -1
    flipped[:3, 3] = affine[:3, :3] @ np.array([0, 4, 0]) + affine[:3, 3]
    _nifti(tmp_path / "seg.nii.gz", np.ascontiguousarray(seg[:, ::-1]), flipped)
    _nifti(tmp_path / "seg_ref.nii.gz", seg, affine)
    image, meta = read_volume(tmp_path / "ct.nii.gz")
    expected, _ = read_volume(tmp_path / "seg_ref.nii.gz")
    got = fetch._labels_on_grid(tmp_path / "seg.nii.gz", image.shape, meta)
    assert np.array_equal(got, expected)
    shifted = affine.copy()
    shifted[0, 3] += 0.8  # one voxel off along x
    _nifti(tmp_path / "seg_shifted.nii.gz", seg, shifted)
    with pytest.raises(fetch.DataFetchError, match="not on the image's grid"):
        fetch._labels_on_grid(tmp_path / "seg_shifted.nii.gz", image.shape, meta)


def test_organs_are_remapped_to_contiguous_labels(fetch) -> None:
    import numpy as np

    names = fetch._total_class_names(_CLASS_MAP_PY)
    seg = np.array([[[0, 1, 5, 6, 8, 20, 52, 63, 64, 7, 33]]], dtype=np.uint8)  # 7, 33: not kept
    out = fetch._remap_organs(seg, names)
    assert out.dtype == np.uint8
    assert out.ravel().tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0]
    with pytest.raises(fetch.DataFetchError, match="aorta"):
        fetch._remap_organs(seg, {k: v for k, v in names.items() if v != "aorta"})
