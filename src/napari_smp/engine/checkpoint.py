"""Checkpoints as single ``.safetensors`` files: every weight and every memory-bank tensor, plus the
configuration as JSON metadata, so that a file alone rebuilds the model.

Loading never unpickles. A PyTorch ``.pt``/``.pth`` file (a zip archive or a raw pickle) is recognised
by its first bytes and refused before anything in it is interpreted, so a checkpoint from a stranger
cannot run code.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .. import __version__
from ..config import ModelConfig, config_from_json
from ..model import SimMPNet, build_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint_info", "FORMAT"]

FORMAT = "napari-smp/1"
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
