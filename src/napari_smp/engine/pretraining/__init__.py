"""Self-supervised pre-training of the lite encoder on unlabelled volumes (SuperCL, MACL).

The pieces: unlabelled slices prepared once (``data``), the four views (``views``), superpixels
(``superpixels``), the contrastive kernel and positive rules (``contrastive``), projection heads
(``heads``), the two objectives (``supercl``, ``macl``) and the driver on the one training loop (``run``).
"""

from .run import PretrainResult, check_settings, pretrain, save_pretrained_result

__all__ = ["PretrainResult", "check_settings", "pretrain", "save_pretrained_result"]
