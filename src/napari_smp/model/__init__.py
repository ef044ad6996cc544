"""Sim-MPNet in PyTorch: DMW-LA with its prototype memory bank and W-LD update, DS-GIM, two presets.

``build_model(ModelConfig(...))`` is the entry point; the paper preset imports the in-house MaxxViT
only when it is built. Layout: net.py (the network), presets.py (paper and lite as compositions),
encoder.py / decoder.py / dsgim.py / memory_bank.py (the figure's parts), attention.py, wld.py and
kmeans.py (the bank's maths), clusters.py (the cluster read-out), blocks.py, maxxvit/.
"""

from .clusters import ClusterReadout
from .dsgim import DSGIM
from .kmeans import kmeans
from .memory_bank import DMWLA
from .net import ModelInputError, SimMPNet, build_model
from .wld import KController, next_k, wld_write

__all__ = [
    "DMWLA",
    "DSGIM",
    "ClusterReadout",
    "KController",
    "ModelInputError",
    "SimMPNet",
    "build_model",
    "kmeans",
    "next_k",
    "wld_write",
]
