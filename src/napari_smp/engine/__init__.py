"""The engine: everything that trains, runs and saves networks, in stages.

- ``training/``: the one loop (``fit``), fine-tuning on a painting, full-dataset training (DDP);
- ``inference/``: the ``Predictor`` that segments whole volumes;
- ``pretraining/``: SuperCL and MACL on unlabelled volumes;
- ``checkpoint``: every checkpoint kind; ``device``: devices and precision; ``errors``;
- ``volumes`` and ``slices``: from volumes to the network's input, shared by all stages.

The public calls below are imported on first use (PEP 562), so that ``import napari_smp.engine``
and its numpy-only modules (``volumes``, ``errors``) load without torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__ = [
    "Cancelled",
    "EngineError",
    "Prediction",
    "Predictor",
    "StepReport",
    "TrainResult",
    "available_devices",
    "complete",
    "finetune",
    "load_checkpoint",
    "pretrain",
    "read_checkpoint_info",
    "run_demo",
    "save_checkpoint",
    "save_pretrained_result",
    "train_dataset",
]

_WHERE = {
    "Cancelled": "errors",
    "EngineError": "errors",
    "Prediction": "inference",
    "Predictor": "inference",
    "StepReport": "training",
    "TrainResult": "training",
    "available_devices": "device",
    "complete": "completion",
    "finetune": "training",
    "load_checkpoint": "checkpoint",
    "pretrain": "pretraining",
    "read_checkpoint_info": "checkpoint",
    "run_demo": "demo",
    "save_checkpoint": "checkpoint",
    "save_pretrained_result": "pretraining",
    "train_dataset": "training",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
