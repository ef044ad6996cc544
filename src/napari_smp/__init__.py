"""napari-smp: Similarity Memory Prior segmentation (Sim-MPNet) for medical volumes.

This module imports no torch and no Qt: ``import napari_smp`` must stay cheap because napari
imports it while discovering plugins.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-smp")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
