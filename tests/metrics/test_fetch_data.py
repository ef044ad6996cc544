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
