"""The in-house MaxxViT-rmlp-small backbone (Encoder A of the ``paper`` preset), timm-compatible by name.

``backbone.py`` is the network, ``layers.py`` its blocks, ``weights.py`` the loader of timm's ImageNet
weights. Only the paper preset imports this package, when it is built.
"""

from .backbone import PRETRAINED_MEAN, PRETRAINED_STD, MaxxVitInputError, MaxxVitRmlpSmall
from .weights import PretrainedWeightsError, load_pretrained

__all__ = [
    "PRETRAINED_MEAN",
    "PRETRAINED_STD",
    "MaxxVitInputError",
    "MaxxVitRmlpSmall",
    "PretrainedWeightsError",
    "load_pretrained",
]
