"""Checkpoints as single ``.safetensors`` files: every weight and every memory-bank tensor, plus the
configuration as JSON metadata, so that a file alone rebuilds the model.

Two kinds, told apart by ``extra["kind"]``: a trained model (the default), and a pre-trained encoder
(``PRETRAINED_KIND``), the whole lite network written by pre-training, of which only the trained parts
(``extra["pretrained"]`` prefixes) are carried into a fine-tune: the encoder (SuperCL), or the encoder
and the decoder's first stages (MACL), weights and batch-norm statistics; **not** the memory banks
(pre-training keeps every bank in its warm-up state; the bank is task state a fine-tune builds from its
own features; the momentum copy of ``phi`` starts equal to the loaded ``phi``); **not** the heads and
the untrained decoder stages, which start fresh, so the class count of the fine-tune is free. The
architecture comes from the pre-trained file, the task (classes, names, normalisation, memory
schedule) from the fine-tune's own config. :func:`start_model` is the one place that tells them apart.

Loading never unpickles. A PyTorch ``.pt``/``.pth`` file (a zip archive or a raw pickle) is recognised
by its first bytes and refused before anything in it is interpreted, so a checkpoint from a stranger
cannot run code.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .. import __version__
from ..config import ModelConfig, config_from_json
from ..io.atomic import atomic_write
from ..model import DMWLA, SimMPNet, build_model

__all__ = [
    "FORMAT",
    "PRETRAINED_KIND",
    "CheckpointError",
    "save_checkpoint",
    "free_checkpoint_path",
    "load_checkpoint",
    "read_checkpoint_info",
    "is_pretrained_checkpoint",
    "save_pretrained",
    "init_from_pretrained",
    "merge_pretrained_config",
    "transferable_keys",
    "start_model",
]

FORMAT = "napari-smp/1"
PRETRAINED_KIND = "pretrained-encoder"
_HEADER_LIMIT = 100_000_000  # safetensors' own cap on the JSON header size


class CheckpointError(ValueError):
    """A file is not a usable napari-smp checkpoint."""


def save_checkpoint(path: str | os.PathLike[str], model: SimMPNet, config: ModelConfig, **extra: Any) -> Path:
    """Write the model's full state (weights and memory banks) and its config to one safetensors file.

    The file appears atomically: it is written under a temporary name in the same folder and renamed.

    Args:
        path: destination, conventionally ending in ``.safetensors``.
        model: the network; every entry of its ``state_dict`` is stored.
        config: the configuration the model was built from.
        **extra: JSON-serialisable facts to keep with it (training steps, metrics, source data...).

    Returns:
        The path written.
    """
    path = Path(path)
    try:
        extra_json = json.dumps(extra, sort_keys=True)
    except TypeError as err:
        raise CheckpointError(f"checkpoint extras must be JSON-serialisable: {err}") from None
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": config.to_json(),
        "preset": config.preset,
        "num_classes": str(config.num_classes),
        "class_names": json.dumps(config.names),
        "version": __version__,
        "extra": extra_json,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    except OSError as err:  # the message names the user's path, not the temporary one
        raise CheckpointError(f"cannot write {path}: {err.strerror or err}") from None
    except Exception as err:  # the Rust writer's own error type (e.g. a full disk)
        raise CheckpointError(f"cannot write {path}: {str(err).splitlines()[0]}") from None
    return path


def free_checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """``path`` (with ``.safetensors`` added if missing) if free, else ``stem-2.safetensors``,
    ``stem-3``...: where a front end saves a new model without overwriting an existing file."""
    path = Path(path).expanduser()
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return candidate


def read_checkpoint_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint's metadata without loading any tensor.

    Returns:
        ``{"format", "config" (dict), "preset", "num_classes", "class_names", "version", "extra" (dict)}``.
    """
    path = _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # the Rust reader raises its own error type
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({err})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(
            f"{path} is a safetensors file but not a napari-smp checkpoint (no model config in it)"
        )
    try:
        config = json.loads(meta["config"])
        return {
            "format": meta["format"],
            "config": config,
            "preset": meta.get("preset", config.get("preset")),
            "num_classes": int(meta.get("num_classes", config.get("num_classes"))),
            "class_names": json.loads(meta.get("class_names", "null")),
            "version": meta.get("version", "unknown"),
            "extra": json.loads(meta.get("extra", "{}")),
        }
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path} has damaged metadata ({err})") from None


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    expect_num_classes: int | None = None,
    expect_preset: str | None = None,
) -> tuple[SimMPNet, ModelConfig]:
    """Rebuild a model from a checkpoint, with its memory banks, in ``eval()`` mode.

    Args:
        path: a file written by :func:`save_checkpoint`.
        map_location: device to put the model on.
        expect_num_classes: refuse a checkpoint made for another number of classes.
        expect_preset: refuse a checkpoint made for another preset.

    Returns:
        ``(model, config)``.
    """
    path = Path(path)
    info = read_checkpoint_info(path)
    if expect_preset is not None and info["preset"] != expect_preset:
        raise CheckpointError(
            f"{path.name} holds a {info['preset']!r} model, but a {expect_preset!r} one is needed"
        )
    if expect_num_classes is not None and info["num_classes"] != expect_num_classes:
        raise CheckpointError(
            f"{path.name} was trained for {info['num_classes']} classes, but {expect_num_classes} are needed"
        )
    try:
        config = config_from_json(json.dumps(info["config"]))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path.name} has a model config this version cannot read ({err})") from None
    model = build_model(config)
    try:
        tensors = load_file(str(path))
    except Exception as err:  # truncated or corrupted tensor data
        raise CheckpointError(f"{path.name} has unreadable tensor data ({err})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{path.name} does not match the model it describes: "
            f"missing {_few(missing)}, unexpected {_few(unexpected)}"
        )
    wrong = [k for k, t in tensors.items() if t.shape != own[k].shape]
    if wrong:
        raise CheckpointError(f"{path.name} has tensors of the wrong shape: {_few(wrong)}")
    model.load_state_dict(tensors, strict=True)
    return model.to(map_location).eval(), config


def _check_file(path: str | os.PathLike[str]) -> Path:
    """Refuse anything that is not a plausible safetensors file, by its first bytes alone."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) == 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len <= min(_HEADER_LIMIT, size - 8) and head[8:9] == b"{":
            return path
    # a zip archive (torch.save since 1.6) or a raw pickle stream (protocol >= 2 starts with 0x80)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        raise CheckpointError(
            f"{path.name} is a PyTorch pickle checkpoint; it was not opened because unpickling can run code "
            "(napari-smp reads only .safetensors checkpoints)"
        )
    raise CheckpointError(f"{path.name} is not a safetensors file")


def _few(names: list[str], n: int = 3) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


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


def start_model(config: ModelConfig, init: str | os.PathLike[str] | None = None) -> tuple[SimMPNet, ModelConfig]:
    """The network a training run starts from, and its config.

    Args:
        config: the run's config (classes, names, normalisation, memory schedule).
        init: None (random weights from ``config``), a pre-trained encoder (its architecture and trained
            parts, ``config``'s task), or a trained checkpoint (its config and weights; ``config`` unused).
    """
    if init is None:
        return build_model(config), config
    if is_pretrained_checkpoint(init):
        model = init_from_pretrained(config, init)
        return model, model.config
    return load_checkpoint(init)
