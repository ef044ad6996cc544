"""scripts/fetch_data.py without the network: cache validation, checksum and extraction filter."""

from __future__ import annotations

import hashlib
import io
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
