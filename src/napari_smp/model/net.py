"""Sim-MPNet: encoder features -> CA/SA decoder with DMW-LA -> deep-supervision heads (research/paper.md §1).

The two presets (``paper``, ``lite``) are compositions of the same parts, built in presets.py; this
module holds the network that runs them and its memory-bank bookkeeping: the optimiser-step hook
(:meth:`SimMPNet.memory_step`, K from :class:`~napari_smp.model.wld.KController`) and the labels shown
to a class-seeded warm-up (:meth:`SimMPNet.labelled`). The cluster read-out is clusters.py.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from .decoder import FineDecoder, Heads, MemoryDecoder
from .encoder import FineEncoder, MemoryEncoder
from .memory_bank import DMWLA, showing_labels
from .presets import PAPER_CHANNELS, PAPER_DEPTHS, PRESETS, Encode
from .wld import KController

__all__ = ["SimMPNet", "build_model", "ModelInputError", "PAPER_CHANNELS", "PAPER_DEPTHS"]


class ModelInputError(ValueError):
    """The tensor given to the network does not have the shape it was built for."""


class SimMPNet(nn.Module):
    """Sim-MPNet. Build it with :func:`build_model`.

    Submodules keep the names checkpoints have always used: ``adapter``, the paper's ``backbone``,
    ``backbone_inject`` and ``gate``, ``encoder``, ``decoder``, ``heads``, lite's ``fine_encoder`` and
    ``fine_decoder``; and the buffers ``k_state``, ``prev_loss``, ``memory_steps`` (K's state).

    Args:
        config: the model configuration; kept as ``self.config``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        parts = PRESETS[config.preset](config)
        self.adapter: nn.Module = parts.adapter
        self.backbone, self.backbone_inject, self.gate = parts.backbone, parts.backbone_inject, parts.gate
        self.encoder: MemoryEncoder = parts.encoder
        self.decoder: MemoryDecoder = parts.decoder
        self.heads: Heads = parts.heads
        self.fine_encoder: FineEncoder | None = parts.fine_encoder
        self.fine_decoder: FineDecoder | None = parts.fine_decoder
        # image -> E1..E4; wires the modules above, it holds none of its own
        self.encode: Encode = parts.encode
        self._sums_heads = parts.sums_heads
        self.register_buffer("k_state", torch.tensor(self.k_rule.initial_k, dtype=torch.long))
        self.register_buffer("prev_loss", torch.tensor(math.nan, dtype=torch.float64))
        self.register_buffer("memory_steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, all_heads: bool = False) -> tuple[torch.Tensor, ...]:
        """Segment a batch of slices.

        Args:
            x: images, shape (B, in_channels, S, S) with S = ``config.img_size``.
            all_heads: in eval mode, give every head at the input size whatever the model answers with
                (to compare the answers).

        Returns:
            Logit maps, deepest head first, each (B, num_classes, S, S); their sum is the prediction.
            Four (decoder stages 1/32 to 1/4), and a fifth at 1/1 for lite with ``lite_full_res``.
            A network answering with its ``"finest"`` head gives only that head in eval mode; in
            training it gives every head, the coarser ones at their own scale, (B, num_classes,
            S / 32, S / 32) up to (B, num_classes, S / 4, S / 4): they are training-only auxiliaries.
        """
        self._check_input(x)
        image = self.adapter(x)  # paper: 1x1 conv to the 3 channels MaxxViT takes; lite: as given
        # E1..E4 at 1/4..1/32: the dual encoder (paper) or the DMW-LA encoder alone (lite); every
        # stage a DMW-LA stack, stage 3 alternating DMW-LA and DS-GIM
        skips = self.encode(image)
        decoded = self.decoder(skips)  # D4..D1: CA/SA skip fusion, one DMW-LA per stage
        if self.fine_decoder is not None and self.fine_encoder is not None:
            # lite_full_res: two more stages, 1/2 and 1/1, through plain-convolution skips
            decoded.append(self.fine_decoder(decoded[-1], self.fine_encoder(image)))
        return self.heads(decoded, x.shape[-2:], auxiliary=self.answer == "finest", all_heads=all_heads)

    @property
    def answer(self) -> str:
        """What the prediction is: the ``"sum"`` of every head's logits, or the ``"finest"`` head alone.

        The paper preset always sums; a lite network follows ``config.lite_prediction``.
        """
        return "sum" if self._sums_heads else self.config.lite_prediction

    def answer_with(self, answer: str) -> ModelConfig:
        """Make a lite network answer with its ``"finest"`` head or the ``"sum"`` of its heads.

        The choice is part of the model's config (a checkpoint keeps it); the new config is returned.
        """
        self.config = dataclasses.replace(self.config, lite_prediction=answer)
        return self.config

    def _check_input(self, x: torch.Tensor) -> None:
        s, c = self.config.img_size, self.config.in_channels
        if x.ndim != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise ModelInputError(
                f"expected a (B, {c}, {s}, {s}) tensor, got {tuple(x.shape)}; resize slices to {s}x{s} first"
            )

    # --- the memory banks ---------------------------------------------------------------------------

    def memory_modules(self) -> list[tuple[str, DMWLA]]:
        """Every DMW-LA module with a stable name ("encoder.stage3.1", "decoder.stage2", ...)."""
        named = self.encoder.memory_modules() + self.decoder.memory_modules()
        return [(name, m) for name, m in named if isinstance(m, DMWLA)]  # none when use_memory is off

    @property
    def k_rule(self) -> KController:
        """The K schedule of ``config.memory``."""
        return KController.from_config(self.config.memory)

    @property
    def k(self) -> int:
        """Current W-LD update range K of the encoder banks."""
        return int(self.k_state)

    @property
    def reads_labels(self) -> bool:
        """True while a class-seeded bank warms up: only then do forwards read ``labelled``'s labels."""
        return any(m.reads_labels for _, m in self.memory_modules())

    def labelled(self, labels: torch.Tensor) -> AbstractContextManager[None]:
        """Show the DMW-LA modules this batch's labels for the forward passes inside the ``with`` block.

        Only a class-seeded warm-up reads them (``memory.bank_init = "labels"``); the trainer wraps
        every training forward in this, and the labels are dropped on leaving.

        Args:
            labels: (B, S, S) long labels of the batch given to the forward.
        """
        return showing_labels((m for _, m in self.memory_modules()), labels)

    def memory_loss(self) -> torch.Tensor | None:
        """The banks' cluster losses of the last training forward, summed, and cleared (None: none).

        Only a class-seeded bank with ``memory.prototype_loss`` after its warm-up has one; the trainer
        adds it to the segmentation loss.
        """
        losses = []
        for _, module in self.memory_modules():
            if module.aux_loss is not None:
                losses.append(module.aux_loss)
                module.aux_loss = None
        return torch.stack(losses).sum() if losses else None

    @torch.no_grad()
    def memory_step(self, loss: float | torch.Tensor | None) -> dict[str, Any]:
        """Advance the memory after one optimiser step; the trainer calls this exactly once per step.

        Counts the step in every bank (k-means when the warm-up ends), moves the momentum copies of phi,
        and sets K from the change of ``loss`` since the previous call (:class:`KController`).

        Args:
            loss: total training loss of this step (None leaves K and the remembered loss alone).

        Returns:
            ``{"step": steps so far, "k": current K (None without a memory bank), "warming_up": bool}``.
        """
        rule = self.k_rule
        self.memory_steps += 1
        modules = self.memory_modules()
        for _, module in modules:
            module.step_memory()
        step, k = int(self.memory_steps), self.k
        if loss is not None:
            loss = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            k = rule.next(step, k, float(self.prev_loss), loss)
            self.prev_loss.fill_(loss)
        self.k_state.fill_(k)
        for name, module in modules:
            if rule.sets(name):
                module.set_k(k)
        # no bank, no K: the rule above still runs on the loss, but nothing would use its value
        return {"step": step, "k": k if modules else None, "warming_up": bool(modules) and modules[0][1].warming_up}


def build_model(config: ModelConfig) -> SimMPNet:
    """Build the network a configuration describes (random weights, empty banks)."""
    return SimMPNet(config)
