"""The npe2 manifest: valid, and every command it names imports and is what it claims."""

import importlib

import pytest

npe2 = pytest.importorskip("npe2")


def _manifest():
    from importlib.resources import files

    return npe2.PluginManifest.from_file(files("napari_smp") / "napari.yaml")


def test_manifest_is_valid_and_complete():
    mf = _manifest()
    assert mf.name == "napari-smp"
    widgets = [w.display_name for w in mf.contributions.widgets]
    assert widgets == ["Fine-tune", "Segment", "Correct", "Clusters", "Metrics", "Pre-train", "View"]
    assert mf.contributions.readers and mf.contributions.writers and mf.contributions.sample_data


def test_every_command_imports():
    for cmd in _manifest().contributions.commands:
        module, attr = cmd.python_name.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), cmd.id
