"""Sim-MPNet in PyTorch: DMW-LA with its prototype memory bank and W-LD update, DS-GIM, two presets.

``build_model(ModelConfig(...))`` is the entry point; the paper preset imports the in-house MaxxViT
only when it is built.
"""

from .dsgim import DSGIM
from .kmeans import kmeans
from .memory_bank import DMWLA
from .net import ModelInputError, SimMPNet, build_model
from .wld import next_k, wld_write

__all__ = ["DMWLA", "DSGIM", "ModelInputError", "SimMPNet", "build_model", "kmeans", "next_k", "wld_write"]
