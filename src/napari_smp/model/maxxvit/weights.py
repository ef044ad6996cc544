"""Loading timm's ``maxxvit_rmlp_small_rw_256`` ImageNet weights into the in-house backbone by name.

A ``.safetensors`` file is read with safetensors; any other file only with
``torch.load(weights_only=True)``, never with full pickle: a weights file from a stranger cannot run code.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from .backbone import MaxxVitRmlpSmall

__all__ = ["PretrainedWeightsError", "load_pretrained"]

_log = logging.getLogger(__name__)

# keys of a timm checkpoint that this features-only backbone deliberately has no slot for
_IGNORED_PREFIXES = ("head.",)
_IGNORED_SUFFIXES = ("relative_position_index", "rel_coords_log")


class PretrainedWeightsError(ValueError):
    """A weights file could not be read safely or does not match the backbone."""


def _read_weights(path: str | os.PathLike[str]) -> Mapping[str, object]:
    """Read a weights file without ever unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"no weights file at {path}.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise PretrainedWeightsError(f"{path} is not a readable safetensors file ({err}).") from err
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError) as err:
        raise PretrainedWeightsError(
            f"{path} holds more than plain tensors, so it was not loaded (pickle is unsafe); "
            "convert it to .safetensors or download timm's safetensors weights instead."
        ) from err
    if not isinstance(loaded, Mapping):
        raise PretrainedWeightsError(f"{path} does not contain a state dict (found {type(loaded).__name__}).")
    return loaded


def _unwrap(state: Mapping[str, object]) -> dict[str, Tensor]:
    """Return the flat name -> tensor mapping, unwrapping common training-checkpoint containers."""
    if not any(isinstance(v, Tensor) for v in state.values()):
        for key in ("state_dict", "model", "state_dict_ema"):
            if isinstance(state.get(key), Mapping):
                return _unwrap(state[key])  # type: ignore[arg-type]
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        # saved from a DataParallel / DDP wrapper
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _adapt(key: str, value: Tensor, target: Tensor) -> Tensor:
    """Reconcile harmless layout differences between a checkpoint tensor and ours."""
    if value.shape == target.shape:
        return value
    if value.ndim != target.ndim and value.numel() == target.numel() and {value.ndim, target.ndim} <= {2, 4}:
        # 1x1 conv <-> linear storage, as in some older timm checkpoints
        return value.reshape(target.shape)
    if key == "stem.conv1.weight" and value.ndim == 4 and value.shape[0] == target.shape[0]:
        # different input channel count: keep the response to a grey image, as timm does
        c_in, c_src = target.shape[1], value.shape[1]
        if c_in == 1:
            return value.sum(dim=1, keepdim=True)
        reps = math.ceil(c_in / c_src)
        return value.repeat(1, reps, 1, 1)[:, :c_in] * (c_src / c_in)
    return value


def _short_list(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_pretrained(
    model: MaxxVitRmlpSmall,
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Tensor],
    strict_backbone: bool = True,
) -> list[str]:
    """Load timm-named ``maxxvit_rmlp_small_rw_256`` weights into ``model`` by name.

    ``head.*`` (the ImageNet classifier) is ignored, as are the non-persistent index buffers some older
    checkpoints carry. A ``.safetensors`` file is read with
    safetensors; any other file only with ``torch.load(weights_only=True)``, never with full pickle.

    Args:
        model: the backbone to fill in place.
        path_or_state_dict: a weights file, or an already loaded name -> tensor mapping.
        strict_backbone: if True, every ``stem.*``, ``stages.*`` and ``norm.*`` key must be present with
            the right shape and no unknown key may appear; otherwise the matching part is loaded and the
            rest is logged.

    Returns:
        The names of the model's parameters that kept their initial values (empty after a strict load).

    Raises:
        PretrainedWeightsError: unreadable or unsafe file, or (strict) missing, unexpected or misshapen keys.
    """
    raw = path_or_state_dict if isinstance(path_or_state_dict, Mapping) else _read_weights(path_or_state_dict)
    state = _unwrap(raw)
    ours = model.state_dict()
    ignored: list[str] = []
    unexpected: list[str] = []
    misshapen: list[str] = []
    to_load: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(_IGNORED_PREFIXES) or key.endswith(_IGNORED_SUFFIXES):
            ignored.append(key)
        elif key not in ours:
            unexpected.append(key)
        else:
            value = _adapt(key, value, ours[key])
            if value.shape != ours[key].shape:
                misshapen.append(f"{key} {tuple(value.shape)} vs {tuple(ours[key].shape)}")
            else:
                to_load[key] = value
    missing = [k for k in ours if k not in to_load]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing or misshapen ({_short_list(misshapen or missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_short_list(unexpected)})")
    if problems and strict_backbone:
        raise PretrainedWeightsError(
            "the weights do not match maxxvit_rmlp_small_rw_256: "
            + "; ".join(problems)
            + " keys; pass strict_backbone=False to load only the matching part."
        )
    if problems:
        _log.warning("partial MaxxViT load: %s keys", "; ".join(problems))
    if ignored:
        _log.info("ignored %d checkpoint keys outside the backbone (%s)", len(ignored), _short_list(ignored))
    model.load_state_dict(to_load, strict=False)
    return missing
