"""What each ``napari-smp`` subcommand does, once ``cli.py`` has parsed its arguments.

Each ``run_*`` reads inputs, calls one engine entry point, and writes outputs atomically. Errors
are raised as ``ValueError`` subclasses with one sentence; ``cli.main`` prints them.
"""

from ._common import check_output
from .clusters import run_clusters
from .complete import run_complete
from .demo import run_demo
from .evaluate import run_evaluate
from .finetune import run_finetune
from .pretrain import run_pretrain
from .segment import run_segment
from .train import run_train

__all__ = [
    "run_complete",
    "run_segment",
    "run_finetune",
    "run_evaluate",
    "run_train",
    "run_pretrain",
    "run_demo",
    "run_clusters",
    "check_output",
]
