"""The two presets as compositions of the same parts (research/paper.md §1.2; docs/method.md).

``paper``: the official dual encoder (:class:`DualEncoder`): MaxxViT-rmlp-small sees the image at
256x256, its deepest map gates the image that the DMW-LA encoder sees at 224x224, and the two encoders'
maps are summed stage by stage; then the CA/SA decoder with DMW-LA and four heads.

``lite``: the same DMW-LA encoder (DS-GIM included), decoder and heads on a small CNN downsampler at
the input size, without the MaxxViT branch, for CPU fine-tuning. With ``lite_full_res`` a shallow path
at 1/1 and 1/2 feeds two more decoder stages, and a fifth head decodes at the input size.

Each preset returns its :class:`Parts`, built in a fixed order: with the global seed, that order is what
fixes the initial weights, so it must not change (checkpoints and reproducibility depend on it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MemoryConfig, ModelConfig
from .blocks import ChannelAdapter, ImageInjection, InputGate
from .decoder import FineDecoder, Heads, MemoryDecoder
from .encoder import FineEncoder, MemoryEncoder, conv_downsamplers, patch_embed_downsamplers
from .memory_bank import DMWLA

__all__ = [
    "PRESETS",
    "PAPER_CHANNELS",
    "PAPER_DEPTHS",
    "Encode",
    "BankSpec",
    "bank_specs",
    "DualEncoder",
    "Parts",
    "paper",
    "lite",
]

PAPER_CHANNELS = (96, 192, 384, 768)
PAPER_DEPTHS = (2, 2, 6, 2)
BACKBONE_SIZE = 256  # MaxxViT branch input side (fixed by its 8x8 windows at stride 32)
ENCODER_SIZE = 224  # DMW-LA branch input side in the paper preset

Encode = Callable[[torch.Tensor], list[torch.Tensor]]


@dataclass(frozen=True)
class BankSpec:
    """Where one half of the network (encoder or decoder) has DMW-LA modules, and what their banks hold.

    Called with a stage's width, it builds that stage's module: a :class:`DMWLA`, or an identity where
    the network has no bank (``use_memory`` off, or a lite stage outside ``lite_memory_stages``).

    Attributes:
        memory: bank sizes and schedules.
        clusters: k, prototypes per bank.
        dim: D, the width of theta, phi, g and the bank.
        widths: the stage widths that carry a bank (in each half, a stage's width names it).
        seeds: the banks' seeds, drawn in build order; the encoder's and decoder's specs share one counter.
        cap_dim: D = min(dim, C) (lite): a bank wider than its stage would only add parameters.
        seed_from_labels: class-seeded warm-up (``memory.bank_init = "labels"`` and k = number of classes).
        eval_updates: write the bank in ``eval()`` too (``faithful_eval_updates``, the official behaviour).
    """

    memory: MemoryConfig
    clusters: int
    dim: int
    widths: frozenset[int]
    seeds: Iterator[int]
    cap_dim: bool = False
    seed_from_labels: bool = False
    eval_updates: bool = False

    def __call__(self, channels: int) -> nn.Module:
        """The DMW-LA module of a stage of width ``channels``, or an identity (the same network without it)."""
        if channels not in self.widths:
            return nn.Identity()
        mem = self.memory
        return DMWLA(
            channels,
            min(self.dim, channels) if self.cap_dim else self.dim,
            self.clusters,
            slots=mem.slots,
            warmup_steps=mem.warmup_steps,
            write_momentum=mem.write_momentum,
            phi_momentum=mem.phi_momentum,
            k_init=mem.k_init,
            kmeans_iters=mem.kmeans_iters,
            seed=next(self.seeds),
            eval_updates=self.eval_updates,
            seed_from_labels=self.seed_from_labels,
            tied_writes=mem.tied_writes,
            prototype_loss=mem.prototype_loss,
            prototype_temperature=mem.prototype_temperature,
        )


def bank_specs(config: ModelConfig, widths: tuple[int, ...], cap_dim: bool) -> tuple[BankSpec, BankSpec]:
    """The encoder's and the decoder's :class:`BankSpec` for a network whose banks sit at ``widths``."""
    mem, classes = config.memory, config.num_classes
    enc_k, dec_k = mem.clusters or classes, mem.decoder_clusters or classes
    by_labels = mem.bank_init == "labels"  # ModelConfig resolves None by preset
    shared = {
        "memory": mem,
        "widths": frozenset(widths if config.use_memory else ()),
        "seeds": itertools.count(mem.seed * 1000),
        "cap_dim": cap_dim,
        "eval_updates": config.faithful_eval_updates,
    }
    return (
        BankSpec(clusters=enc_k, dim=mem.dim, seed_from_labels=by_labels and enc_k == classes, **shared),
        BankSpec(clusters=dec_k, dim=mem.decoder_dim, seed_from_labels=by_labels and dec_k == classes, **shared),
    )


class DualEncoder:
    """The paper's encoder pair (Fig. 2): MaxxViT branch A, the input gate, DMW-LA encoder B, fused.

    Branch A: ``f_i = inject_i(stage_i(f_{i-1}), image_256)``, i = 1..4. Gate: the image, weighted by
    ``sigmoid(conv1x1(f_4))`` and resized to 224, is encoder B's input. Fusion: ``E_i = e_i + resize(f_i)``.

    Not an ``nn.Module``: it wires parts that :class:`~napari_smp.model.net.SimMPNet` registers under
    the names checkpoints have always used (``backbone.*``, ``backbone_inject.*``, ``gate.*``,
    ``encoder.*``); registering them here too would save every tensor twice.

    Args:
        backbone: MaxxViT-rmlp-small (``stem`` and ``stages``; its final norm is not used, as officially).
        injections: one image side input per backbone stage.
        gate: the input gate.
        encoder: encoder B.
    """

    def __init__(self, backbone: nn.Module, injections: nn.ModuleList, gate: InputGate, encoder: MemoryEncoder):
        self.backbone, self.injections, self.gate, self.encoder = backbone, injections, gate, encoder

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Image (B, 3, S, S) -> E1..E4, (B, PAPER_CHANNELS[i], 56 / 2^i, 56 / 2^i) (encoder B's grid)."""
        a_in = _resize(image, BACKBONE_SIZE)
        f = self.backbone.stem(a_in)
        branch_a = []
        for stage, inject in zip(self.backbone.stages, self.injections, strict=True):
            f = inject(stage(f), a_in)
            branch_a.append(f)
        b_in = _resize(self.gate(a_in, branch_a[-1]), ENCODER_SIZE)
        return [
            e + F.interpolate(f, size=e.shape[-2:], mode="bilinear", align_corners=False)
            for e, f in zip(self.encoder(b_in), branch_a, strict=True)
        ]


@dataclass
class Parts:
    """A preset's modules, which ``SimMPNet`` registers under these names, and how they connect.

    Attributes:
        adapter: input channels to what the encoders take (paper: 3; lite: an identity).
        encoder: the DMW-LA encoder (paper: encoder B).
        decoder: the CA/SA decoder with DMW-LA.
        heads: one head per decoded map, deepest first.
        encode: image -> E1..E4: :class:`DualEncoder` (paper), or the encoder's own call (lite).
        sums_heads: the prediction is always the sum of the heads (paper); else ``lite_prediction`` says.
        backbone, backbone_inject, gate: the paper's branch A and gate; None in lite.
        fine_encoder, fine_decoder: lite's full-resolution path; None without it.
    """

    adapter: nn.Module
    encoder: MemoryEncoder
    decoder: MemoryDecoder
    heads: Heads
    encode: Encode
    sums_heads: bool
    backbone: nn.Module | None = None
    backbone_inject: nn.ModuleList | None = None
    gate: InputGate | None = None
    fine_encoder: FineEncoder | None = None
    fine_decoder: FineDecoder | None = None


def paper(config: ModelConfig) -> Parts:
    """The official network: dual encoder, DMW-LA everywhere with D = ``memory.dim`` / ``decoder_dim``."""
    from .maxxvit import MaxxVitRmlpSmall  # deferred: only the paper preset needs it

    channels = PAPER_CHANNELS
    adapter = ChannelAdapter(config.in_channels) if config.in_channels != 3 else nn.Identity()
    backbone = MaxxVitRmlpSmall(in_chans=3)
    injections = nn.ModuleList(ImageInjection(3, c) for c in channels)
    gate = InputGate(channels[-1])
    enc_banks, dec_banks = bank_specs(config, channels, cap_dim=False)
    encoder = MemoryEncoder(
        patch_embed_downsamplers(3, channels),
        channels,
        PAPER_DEPTHS,
        enc_banks,
        image_channels=3,
        faithful_dsgim=config.faithful_dsgim,
    )
    return Parts(
        adapter=adapter,
        encoder=encoder,
        decoder=MemoryDecoder(channels[::-1], dec_banks),
        heads=Heads(nn.Conv2d(c, config.num_classes, 1) for c in channels[::-1]),
        encode=DualEncoder(backbone, injections, gate, encoder),
        sums_heads=True,
        backbone=backbone,
        backbone_inject=injections,
        gate=gate,
    )


def lite(config: ModelConfig) -> Parts:
    """The CPU network: the DMW-LA encoder on strided convolutions, banks only at ``lite_memory_stages``."""
    w = config.lite_width
    channels = (w, 2 * w, 4 * w, 8 * w)
    adapter = nn.Identity()
    downsamplers = conv_downsamplers(config.in_channels, channels)
    # a stage's width names it: DMW-LA at the stages listed (1 = 1/4 ... 4 = 1/32)
    enc_banks, dec_banks = bank_specs(config, tuple(channels[s - 1] for s in config.lite_memory_stages), cap_dim=True)
    encoder = MemoryEncoder(
        downsamplers,
        channels,
        tuple(config.lite_depths),
        enc_banks,
        image_channels=config.in_channels,
        faithful_dsgim=config.faithful_dsgim,
    )
    decoder = MemoryDecoder(channels[::-1], dec_banks)
    heads = Heads(nn.Conv2d(c, config.num_classes, 1) for c in channels[::-1])
    fine_encoder = fine_decoder = None
    if config.lite_full_res:
        widths = (max(8, channels[0] // 2), channels[0])
        # its own random stream: the rest of the network, and every draw after it, start as without it
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.memory.seed + 7919)
            fine_encoder = FineEncoder(config.in_channels, widths)
            fine_decoder = FineDecoder(channels[0], widths)
            heads.append(nn.Conv2d(widths[0], config.num_classes, 1))
    return Parts(
        adapter=adapter,
        encoder=encoder,
        decoder=decoder,
        heads=heads,
        # the encoder's bound call, not the module: the module is registered once, as "encoder"
        encode=encoder.__call__,
        sums_heads=False,
        fine_encoder=fine_encoder,
        fine_decoder=fine_decoder,
    )


PRESETS: dict[str, Callable[[ModelConfig], Parts]] = {"paper": paper, "lite": lite}


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
