"""Pre-trained checkpoints: writing them, recognising them, and starting a fine-tune from one.

A pre-trained checkpoint is an ordinary napari-smp checkpoint (the whole lite network, so every tool
can read it) whose metadata says ``kind = "pretrained-encoder"``, the method, and which state-dict
prefixes were actually trained. Only those are carried into a fine-tune:

* the encoder (SuperCL), or the encoder and the decoder's first stages (MACL), weights and batch-norm
  statistics;
* **not** the memory banks (pool, prototypes, counters): pre-training keeps every bank in its warm-up
  state, and the bank is task state the fine-tune builds from its own features. The momentum copy of
  ``phi`` starts equal to the loaded ``phi``;
* **not** the heads and the untrained decoder stages, which start fresh, so the class count of the
  fine-tune is free.

The architecture (width, depths, input size, bank feature widths) comes from the checkpoint; the task
(classes, names, normalisation, memory schedule) from the fine-tune's own config.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..config import ModelConfig
from ..model import build_model
from ..model.memory_bank import DMWLA
from .checkpoint import CheckpointError, read_checkpoint_info, save_checkpoint

__all__ = [
    "PRETRAINED_KIND",
    "save_pretrained",
    "is_pretrained_checkpoint",
    "merge_pretrained_config",
    "transferable_keys",
    "init_from_pretrained",
]

PRETRAINED_KIND = "pretrained-encoder"


def save_pretrained(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    config: ModelConfig,
    method: str,
    prefixes: list[str],
    **extra: Any,
) -> Path:
    """Write a pre-trained network atomically, marked as such (see the module docstring)."""
    return save_checkpoint(
        path, model, config, kind=PRETRAINED_KIND, method=method, pretrained=prefixes, **extra
    )


def is_pretrained_checkpoint(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a napari-smp checkpoint written by pre-training (metadata only is read)."""
    return read_checkpoint_info(path)["extra"].get("kind") == PRETRAINED_KIND


def merge_pretrained_config(source: ModelConfig, task: ModelConfig) -> ModelConfig:
    """The fine-tune's config with the pre-trained network's architecture fields."""
    memory = replace(task.memory, dim=source.memory.dim, decoder_dim=source.memory.decoder_dim)
    return replace(
        task,
        preset=source.preset,
        in_channels=source.in_channels,
        img_size=source.img_size,
        lite_width=source.lite_width,
        lite_depths=tuple(source.lite_depths),
        lite_full_res=source.lite_full_res,
        lite_memory_stages=tuple(source.lite_memory_stages),
        slice_context=source.slice_context,
        faithful_dsgim=source.faithful_dsgim,
        memory=memory,
    )


def transferable_keys(model: torch.nn.Module, prefixes: list[str]) -> list[str]:
    """State-dict keys under ``prefixes``, minus every memory-bank buffer of the DMW-LA modules."""
    bank = {
        f"{name}.{buf}"
        for name, module in model.named_modules()
        if isinstance(module, DMWLA)
        for buf, _ in module.named_buffers(recurse=False)
    }
    return [k for k in model.state_dict() if k.startswith(tuple(prefixes)) and k not in bank]


def init_from_pretrained(config: ModelConfig, path: str | os.PathLike[str]) -> torch.nn.Module:
    """Build the network for a fine-tune and load the pre-trained parts of ``path`` into it.

    Args:
        config: the fine-tune's config (classes, names, norm, memory schedule); its architecture
            fields are replaced by the checkpoint's.
        path: a checkpoint written by :func:`save_pretrained`.

    Returns:
        The model (``model.config`` is the merged config), in train mode on the CPU.
    """
    path = Path(path)
    info = read_checkpoint_info(path)
    extra = info["extra"]
    if extra.get("kind") != PRETRAINED_KIND:
        raise CheckpointError(
            f"{path.name} is not a pre-trained encoder checkpoint (napari-smp pretrain writes those)"
        )
    try:
        source = ModelConfig.from_dict(info["config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path.name} has a model config this version cannot read ({err})") from None
    merged = merge_pretrained_config(source, config)
    model = build_model(merged)
    keys = transferable_keys(model, list(extra.get("pretrained") or ["encoder."]))
    try:
        tensors = load_file(str(path))
    except Exception as err:  # the Rust reader raises its own error type
        raise CheckpointError(f"{path.name} has unreadable tensor data ({err})") from None
    own = model.state_dict()
    missing = [k for k in keys if k not in tensors]
    wrong = [k for k in keys if k in tensors and tensors[k].shape != own[k].shape]
    if missing or wrong or not keys:
        raise CheckpointError(
            f"{path.name} does not fit the network it describes ({len(missing)} missing and "
            f"{len(wrong)} mis-shaped pre-trained tensors)"
        )
    model.load_state_dict({k: tensors[k] for k in keys}, strict=False)
    with torch.no_grad():
        for _, module in model.memory_modules():
            module.phi_ema.copy_(module.phi.weight)
    return model.train()
