"""Sim-MPNet and its two presets (research/paper.md §1; choices in docs/method.md).

``paper``: the official dual encoder. MaxxViT-rmlp-small sees the image at 256x256; its deepest map gates
the image that the DMW-LA encoder sees at 224x224; the two encoders' maps are summed stage by stage and
decoded by the CA/SA decoder with DMW-LA; four heads give logits at the input size.

``lite``: the same DMW-LA encoder stages, DS-GIM and decoder on a small CNN downsampler at the input
size, without the MaxxViT branch, for CPU fine-tuning. With ``lite_full_res`` (new models) a shallow
path at 1/1 and 1/2 feeds two more decoder stages through skips, and a fifth head decodes at the input
size (model/fine.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MemoryConfig, ModelConfig
from .blocks import ChannelAdapter, ImageInjection, InputGate
from .decoder import MemoryDecoder
from .encoder import MemoryEncoder, conv_downsamplers, patch_embed_downsamplers
from .fine import FineDecoder, FineEncoder
from .memory_bank import DMWLA
from .wld import next_k

__all__ = ["SimMPNet", "build_model", "ModelInputError", "PAPER_CHANNELS", "PAPER_DEPTHS"]

PAPER_CHANNELS = (96, 192, 384, 768)
PAPER_DEPTHS = (2, 2, 6, 2)
BACKBONE_SIZE = 256  # MaxxViT branch input side (fixed by its 8x8 windows at stride 32)
ENCODER_SIZE = 224  # DMW-LA branch input side in the paper preset


class ModelInputError(ValueError):
    """The tensor given to the network does not have the shape it was built for."""


class _Captured(Exception):
    """Raised by a hook to stop a forward pass once the wanted input has been seen."""


class SimMPNet(nn.Module):
    """Sim-MPNet. Build it with :func:`build_model`.

    Args:
        config: the model configuration; kept as ``self.config``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        mem = config.memory
        if config.preset == "paper":
            channels, depths = PAPER_CHANNELS, PAPER_DEPTHS
            from .maxxvit import MaxxVitRmlpSmall  # deferred: only the paper preset needs it

            self.adapter: nn.Module = (
                ChannelAdapter(config.in_channels) if config.in_channels != 3 else nn.Identity()
            )
            self.backbone = MaxxVitRmlpSmall(in_chans=3)
            self.backbone_inject = nn.ModuleList(ImageInjection(3, c) for c in channels)
            self.gate = InputGate(channels[-1])
            downsamplers = patch_embed_downsamplers(3, channels)
            image_channels = 3
            enc_dim: Callable[[int], int] = lambda c: mem.dim  # noqa: E731
            dec_dim: Callable[[int], int] = lambda c: mem.decoder_dim  # noqa: E731
            at_width: Callable[[int], bool] = lambda c: True  # noqa: E731
        else:
            w = config.lite_width
            channels, depths = (w, 2 * w, 4 * w, 8 * w), tuple(config.lite_depths)
            self.adapter = nn.Identity()
            downsamplers = conv_downsamplers(config.in_channels, channels)
            image_channels = config.in_channels
            # a narrow stage cannot use a bank wider than itself
            enc_dim = lambda c: min(mem.dim, c)  # noqa: E731
            dec_dim = lambda c: min(mem.decoder_dim, c)  # noqa: E731
            # DMW-LA only at the stages listed (1 = 1/4 ... 4 = 1/32); a stage's width names it
            memory_widths = {channels[s - 1] for s in config.lite_memory_stages}
            at_width = lambda c: c in memory_widths  # noqa: E731
        enc_k = mem.clusters or config.num_classes
        dec_k = mem.decoder_clusters or config.num_classes
        by_labels = mem.bank_init == "labels"  # ModelConfig resolves None by preset
        seeds = itertools.count(mem.seed * 1000)
        self.encoder = MemoryEncoder(
            downsamplers,
            channels,
            depths,
            _dmwla_factory(
                mem, enc_k, enc_dim, seeds, config.faithful_eval_updates, config.use_memory, at_width,
                by_labels and enc_k == config.num_classes,
            ),
            image_channels=image_channels,
            faithful_dsgim=config.faithful_dsgim,
        )
        self.decoder = MemoryDecoder(
            channels[::-1],
            _dmwla_factory(
                mem, dec_k, dec_dim, seeds, config.faithful_eval_updates, config.use_memory, at_width,
                by_labels and dec_k == config.num_classes,
            ),
        )
        self.heads = nn.ModuleList(nn.Conv2d(c, config.num_classes, 1) for c in channels[::-1])
        self.fine_encoder: FineEncoder | None = None
        self.fine_decoder: FineDecoder | None = None
        if config.preset == "lite" and config.lite_full_res:
            widths = (max(8, channels[0] // 2), channels[0])
            # its own random stream: the rest of the network, and every draw after it, start as without it
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(mem.seed + 7919)
                self.fine_encoder = FineEncoder(config.in_channels, widths)
                self.fine_decoder = FineDecoder(channels[0], widths)
                self.heads.append(nn.Conv2d(widths[0], config.num_classes, 1))
        k0 = mem.slots // 2 if mem.k_init is None else mem.k_init
        self.register_buffer("k_state", torch.tensor(k0, dtype=torch.long))
        self.register_buffer("prev_loss", torch.tensor(math.nan, dtype=torch.float64))
        self.register_buffer("memory_steps", torch.zeros((), dtype=torch.long))

    @property
    def reads_labels(self) -> bool:
        """True while a class-seeded bank warms up: only then do forwards read ``labelled``'s labels."""
        return any(m.seed_from_labels and m.warming_up for _, m in self.memory_modules())

    @contextmanager
    def labelled(self, labels: torch.Tensor) -> Iterator[None]:
        """Show the DMW-LA modules this batch's labels for the forward passes inside the block.

        Only a class-seeded warm-up reads them (``memory.bank_init = "labels"``); the trainer wraps
        every training forward in this, and the labels are dropped on leaving.

        Args:
            labels: (B, S, S) long labels of the batch given to the forward.
        """
        modules = [m for _, m in self.memory_modules()]
        for m in modules:
            m.targets = labels
        try:
            yield
        finally:
            for m in modules:
                m.targets = None

    @property
    def k(self) -> int:
        """Current W-LD update range K of the encoder banks."""
        return int(self.k_state)

    def answer_with(self, answer: str) -> ModelConfig:
        """Make a lite network answer with its ``"finest"`` head or the ``"sum"`` of its heads.

        The choice is part of the model's config (a checkpoint keeps it); the new config is returned.
        """
        self.config = dataclasses.replace(self.config, lite_prediction=answer)
        return self.config

    def forward(self, x: torch.Tensor, all_heads: bool = False) -> tuple[torch.Tensor, ...]:
        """Segment a batch of slices.

        Args:
            x: images, shape (B, in_channels, S, S) with S = ``config.img_size``.
            all_heads: in eval mode, give every head at the input size whatever the model answers with
                (to compare the answers).

        Returns:
            Logit maps, deepest head first, each (B, num_classes, S, S); their sum is the prediction.
            Four (decoder stages 1/32 to 1/4), and a fifth at 1/1 for lite with ``lite_full_res``.
            A lite network with ``lite_prediction="finest"`` gives only its finest head in eval mode;
            in training it gives every head, the coarser ones at their own scale, (B, num_classes,
            S / 32, S / 32) up to (B, num_classes, S / 4, S / 4): they are training-only auxiliaries.
        """
        self._check_input(x)
        size = x.shape[-2:]
        image = self.adapter(x)
        if self.config.preset == "paper":
            fused = self._dual_encode(image)
        else:
            fused = self.encoder(image)
        decoded = self.decoder(fused)
        if self.fine_encoder is not None and self.fine_decoder is not None:
            decoded.append(self.fine_decoder(decoded[-1], self.fine_encoder(image)))
        pairs = list(zip(self.heads, decoded, strict=True))
        auxiliary = self.config.preset == "lite" and self.config.lite_prediction == "finest"
        if not self.training and auxiliary and not all_heads:
            pairs = pairs[-1:]  # the answer; the coarser heads only shaped the features in training
        logits = [head(d) for head, d in pairs]
        # training-only auxiliaries stay at their own scale; the loss pools the targets to meet them
        # (nnU-Net's way): upsampling four heads and their loss terms to S x S cost a fifth of a step
        keep = len(logits) - 1 if self.training and auxiliary else 0
        return tuple(
            out if i < keep else F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            for i, out in enumerate(logits)
        )

    def _dual_encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        a_in = _resize(image, BACKBONE_SIZE)
        f = self.backbone.stem(a_in)
        backbone_feats = []
        for stage, inject in zip(self.backbone.stages, self.backbone_inject, strict=True):
            f = inject(stage(f), a_in)
            backbone_feats.append(f)
        b_in = _resize(self.gate(a_in, backbone_feats[-1]), ENCODER_SIZE)
        return [
            e + F.interpolate(f, size=e.shape[-2:], mode="bilinear", align_corners=False)
            for e, f in zip(self.encoder(b_in), backbone_feats, strict=True)
        ]

    def _check_input(self, x: torch.Tensor) -> None:
        s, c = self.config.img_size, self.config.in_channels
        if x.ndim != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise ModelInputError(
                f"expected a (B, {c}, {s}, {s}) tensor, got {tuple(x.shape)}; resize slices to {s}x{s} first"
            )

    def memory_modules(self) -> list[tuple[str, DMWLA]]:
        """Every DMW-LA module with a stable name ("encoder.stage3.1", "decoder.stage2", ...)."""
        named = self.encoder.memory_modules() + self.decoder.memory_modules()
        return [(name, m) for name, m in named if isinstance(m, DMWLA)]  # none when use_memory is off

    @torch.no_grad()
    def memory_step(self, loss: float | torch.Tensor | None) -> dict[str, Any]:
        """Advance the memory after one optimiser step; the trainer calls this exactly once per step.

        Counts the step in every bank (k-means when the warm-up ends), moves the momentum copies of phi,
        and sets K from the change of ``loss`` since the previous call (:func:`next_k`) once two
        consecutive losses come from after the warm-up and ``k_delay_steps`` further steps have passed.

        Args:
            loss: total training loss of this step (None leaves K and the remembered loss alone).

        Returns:
            ``{"step": steps so far, "k": current K (None without a memory bank), "warming_up": bool}``.
        """
        mem: MemoryConfig = self.config.memory
        self.memory_steps += 1
        modules = self.memory_modules()
        for _, module in modules:
            module.step_memory()
        step, k = int(self.memory_steps), self.k
        if loss is not None:
            loss = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
            # both losses of the difference must come from main-phase forwards (the loss reported at
            # step s was computed by a forward that saw s - 1 steps)
            if step > mem.warmup_steps + 1 + mem.k_delay_steps:
                prev = float(self.prev_loss)
                k = next_k(
                    k,
                    None if math.isnan(prev) else prev,
                    loss,
                    mem.slots,
                    mem.k_low,
                    mem.k_high,
                    mem.k_policy,
                )
            self.prev_loss.fill_(loss)
        self.k_state.fill_(k)
        for name, module in modules:
            if name.startswith("encoder") or mem.share_decoder_k:
                module.set_k(k)
        # no bank, no K: the rule above still runs on the loss, but nothing would use its value
        return {"step": step, "k": k if modules else None, "warming_up": bool(modules) and modules[0][1].warming_up}

    @torch.no_grad()
    def cluster_maps(self, x: torch.Tensor, module: str) -> dict[str, Any]:
        """Routing of every feature cell of one DMW-LA module, for the cluster views.

        Runs in eval mode, changes no state, and stops the forward pass at the chosen module.

        Args:
            x: images, shape (B, in_channels, S, S).
            module: a name from :meth:`memory_modules`.

        Returns:
            ``"assignment"`` (B, h, w) int64 cluster index, ``"similarity"`` (B, k, h, w) cosine
            similarity to every prototype, ``"stride"`` input pixels per feature cell (float),
            ``"warming_up"`` (prototypes are meaningless before the k-means initialisation).
        """
        modules = dict(self.memory_modules())
        if not modules:
            raise ValueError(
                "this model was trained without its memory bank: it has no clusters to show; fine-tune one "
                "with it (Fine-tune's 'memory bank' box, or finetune --memory)"
            )
        if module not in modules:
            raise ValueError(f"no DMW-LA module named {module!r}; choose one of {', '.join(modules)}")
        target, seen = modules[module], {}

        def capture(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen["x"] = args[0]
            raise _Captured

        handle = target.register_forward_pre_hook(capture)
        try:
            with self._frozen():
                self(x)
        except _Captured:
            pass
        finally:
            handle.remove()
        sim = target.similarity(seen["x"])
        return {
            "assignment": sim.argmax(dim=1),
            "similarity": sim,
            "stride": x.shape[-1] / sim.shape[-1],
            "warming_up": target.warming_up,
        }

    @contextmanager
    def _frozen(self) -> Iterator[None]:
        was_training = self.training
        updates = [(m, m.eval_updates) for _, m in self.memory_modules()]
        self.eval()
        for m, _ in updates:
            m.eval_updates = False
        try:
            yield
        finally:
            for m, flag in updates:
                m.eval_updates = flag
            self.train(was_training)


def _dmwla_factory(
    mem: MemoryConfig,
    clusters: int,
    dim_for: Callable[[int], int],
    seeds: Iterator[int],
    eval_updates: bool,
    use_memory: bool = True,
    at_width: Callable[[int], bool] = lambda c: True,
    seed_from_labels: bool = False,
) -> Callable[[int], nn.Module]:
    def make(channels: int) -> nn.Module:
        # the ablation (use_memory off), or a stage left without DMW-LA: the same network, an identity
        if not use_memory or not at_width(channels):
            return nn.Identity()
        return DMWLA(
            channels,
            dim_for(channels),
            clusters,
            slots=mem.slots,
            warmup_steps=mem.warmup_steps,
            write_momentum=mem.write_momentum,
            phi_momentum=mem.phi_momentum,
            k_init=mem.k_init,
            kmeans_iters=mem.kmeans_iters,
            seed=next(seeds),
            eval_updates=eval_updates,
            seed_from_labels=seed_from_labels,
        )

    return make


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def build_model(config: ModelConfig) -> SimMPNet:
    """Build the network a configuration describes (random weights, empty banks)."""
    return SimMPNet(config)
