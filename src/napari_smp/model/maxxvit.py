"""MaxxViT-rmlp-small backbone (Encoder A of Sim-MPNet's ``paper`` preset), timm-compatible by name.

The network reproduces the configuration of timm's ``maxxvit_rmlp_small_rw_256``: a two-conv stem
(48, 96 channels, stride 2) and four stages of widths (96, 192, 384, 768) and depths (2, 2, 5, 2).
Every block is ConvNeXt conv -> block (window) attention -> grid attention, with 8x8 partitions at a
256 input and a relative-position bias computed by an MLP from log-spaced offsets ("rmlp"). Parameter
names equal timm's (``stem.*``, ``stages.*``, ``norm.*``) so that timm's ImageNet weights
(``maxxvit_rmlp_small_rw_256.sw_in1k``) load with :func:`load_pretrained`; only the classifier
(``head.*``) is left out. As in Sim-MPNet's copy of the backbone (``lib/maxxvit_4out.py``), the final
LayerNorm ``norm`` is applied to the last stage output only; stages 1-3 are returned un-normalised.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from .layout import nchw
from .maxxvit_layers import (
    LN_EPS,
    ConvNeXtBlock,
    LayerNorm2d,
    LayerNormAct2d,
    PartitionAttention,
    init_conv_,
    init_transformer_,
)

__all__ = [
    "FEATURE_CHANNELS",
    "FEATURE_STRIDES",
    "PRETRAINED_MEAN",
    "PRETRAINED_STD",
    "MaxxVitBlock",
    "MaxxVitInputError",
    "MaxxVitRmlpSmall",
    "MaxxVitStage",
    "PretrainedWeightsError",
    "Stem",
    "load_pretrained",
]

_log = logging.getLogger(__name__)

EMBED_DIMS = (96, 192, 384, 768)
DEPTHS = (2, 2, 5, 2)
STEM_WIDTH = (48, 96)
FEATURE_CHANNELS = EMBED_DIMS
FEATURE_STRIDES = (4, 8, 16, 32)
# timm's ImageNet weights for this model were trained on inputs scaled to [-1, 1]
PRETRAINED_MEAN = (0.5, 0.5, 0.5)
PRETRAINED_STD = (0.5, 0.5, 0.5)
# the partition side is the input side divided by this (256 -> 8), as in timm
_PARTITION_RATIO = 32
# keys of a timm checkpoint that this features-only backbone deliberately has no slot for
_IGNORED_PREFIXES = ("head.",)
_IGNORED_SUFFIXES = ("relative_position_index", "rel_coords_log")


class MaxxVitInputError(ValueError):
    """The input tensor or the construction arguments do not fit the backbone."""


class PretrainedWeightsError(ValueError):
    """A weights file could not be read safely or does not match the backbone."""


class Stem(nn.Module):
    """3x3 conv (stride 2) -> LayerNorm + GELU -> 3x3 conv, no conv biases.

    ``(B, in_chans, H, W) -> (B, 96, H/2, W/2)``.
    """

    def __init__(self, in_chans: int, widths: tuple[int, int] = STEM_WIDTH) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=2, padding=1, bias=False)
        self.norm1 = LayerNormAct2d(widths[0])
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3, stride=1, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.norm1(self.conv1(x)))


class MaxxVitBlock(nn.Module):
    """ConvNeXt block, then block attention, then grid attention (both channels-last inside).

    ``(B, C_in, H, W) -> (B, C_out, H/stride, W/stride)``.
    """

    def __init__(
        self, dim: int, dim_out: int, partition: int, stride: int = 1, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.conv = ConvNeXtBlock(dim, dim_out, stride=stride, drop_path=drop_path)
        self.attn_block = PartitionAttention(dim_out, partition, grid=False, drop_path=drop_path)
        self.attn_grid = PartitionAttention(dim_out, partition, grid=True, drop_path=drop_path)
        init_conv_(self.conv)
        init_transformer_(self.attn_block)
        init_transformer_(self.attn_grid)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)
        x = self.attn_grid(self.attn_block(x))
        # a channels-last view here would set the layout of the convs after it (model/layout.py)
        return nchw(x.permute(0, 3, 1, 2))


class MaxxVitStage(nn.Module):
    """``depth`` MaxxViT blocks; the first halves the resolution. ``(B, C_in, H, W) -> (B, C, H/2, W/2)``."""

    def __init__(self, dim: int, dim_out: int, depth: int, partition: int, drop_path: list[float]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *[
                MaxxVitBlock(dim if i == 0 else dim_out, dim_out, partition, 2 if i == 0 else 1, drop_path[i])
                for i in range(depth)
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class MaxxVitRmlpSmall(nn.Module):
    """MaxxViT-rmlp-small (timm ``maxxvit_rmlp_small_rw_256`` without its classifier ``head``).

    Args:
        in_chans: input channels of the stem (3 for ImageNet weights).
        img_size: side of the square training input; fixes the attention partition (``img_size // 32``).
        drop_path_rate: stochastic-depth rate, rising linearly over the 11 blocks from 0 to this value.

    Attributes:
        feature_channels: channels of the 4 stage outputs, (96, 192, 384, 768).
        feature_strides: their strides relative to the input, (4, 8, 16, 32).
    """

    def __init__(self, in_chans: int = 3, img_size: int = 256, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if in_chans < 1:
            raise MaxxVitInputError(f"in_chans must be at least 1, got {in_chans}.")
        if img_size < _PARTITION_RATIO or img_size % _PARTITION_RATIO:
            raise MaxxVitInputError(f"img_size must be a positive multiple of 32, got {img_size}.")
        if not 0.0 <= drop_path_rate < 1.0:
            raise MaxxVitInputError(f"drop_path_rate must lie in [0, 1), got {drop_path_rate}.")
        self.in_chans = in_chans
        self.img_size = img_size
        self.partition_size = img_size // _PARTITION_RATIO
        self.feature_channels = FEATURE_CHANNELS
        self.feature_strides = FEATURE_STRIDES

        self.stem = Stem(in_chans)
        init_conv_(self.stem)
        rates = torch.linspace(0.0, drop_path_rate, sum(DEPTHS)).tolist()
        stages = []
        dim, start = STEM_WIDTH[1], 0
        for dim_out, depth in zip(EMBED_DIMS, DEPTHS, strict=True):
            stages.append(
                MaxxVitStage(dim, dim_out, depth, self.partition_size, rates[start : start + depth])
            )
            dim, start = dim_out, start + depth
        self.stages = nn.Sequential(*stages)
        self.norm = LayerNorm2d(EMBED_DIMS[-1], eps=LN_EPS)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise MaxxVitInputError(
                f"expected a (B, {self.in_chans}, H, W) tensor, got shape {tuple(x.shape)}."
            )
        # the deepest map (stride 32) must still tile into partition x partition groups
        multiple = _PARTITION_RATIO * self.partition_size
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise MaxxVitInputError(
                f"input height and width must be multiples of {multiple} for img_size {self.img_size}, "
                f"got {x.shape[2]}x{x.shape[3]}; resize the input to {self.img_size}x{self.img_size}."
            )

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Run the stem and the 4 stages.

        Args:
            x: ``(B, in_chans, H, W)`` with ``H``, ``W`` multiples of ``img_size`` (256 by default).

        Returns:
            The 4 stage outputs, channels-first: ``(B, 96, H/4, W/4)``, ``(B, 192, H/8, W/8)``,
            ``(B, 384, H/16, W/16)``, ``(B, 768, H/32, W/32)``; the last one after the final ``norm``.
        """
        self._check_input(x)
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        features[-1] = self.norm(features[-1])
        return features

    def forward(self, x: Tensor) -> list[Tensor]:
        """Alias of :meth:`forward_features`."""
        return self.forward_features(x)


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
