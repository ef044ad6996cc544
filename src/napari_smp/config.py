"""One set of dataclasses for every setting of the product.

A checkpoint stores ``ModelConfig.to_dict()`` as JSON and the model is rebuilt from
``ModelConfig.from_dict``; nothing else is needed to reproduce a prediction. Training and
inference settings live in ``TrainConfig`` and ``InferConfig``. This module imports only the
standard library so that every other layer may depend on it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PRESETS",
    "NormConfig",
    "MemoryConfig",
    "ModelConfig",
    "TrainConfig",
    "InferConfig",
    "PretrainConfig",
    "PRETRAIN_METHODS",
    "config_from_json",
    "DEFAULT_STEPS",
    "UNCAPPED_STEPS",
]

PRESETS = ("lite", "paper")


@dataclass
class NormConfig:
    """How slices are scaled to the network's input range; repeated exactly at inference.

    ``ct``: clip to ``window`` (HU) then map to [0, 1] (the paper's Synapse recipe).
    ``percentile``: clip to the volume's ``percentiles`` then map to [0, 1] (MR and unknown units).
    """

    mode: Literal["ct", "percentile"] = "percentile"
    window: tuple[float, float] = (-125.0, 275.0)
    percentiles: tuple[float, float] = (0.5, 99.5)


@dataclass
class MemoryConfig:
    """The prototype memory bank of every DMW-LA module and its W-LD update (research/paper.md §2)."""

    slots: int = 100  # M: memory slots per cluster
    clusters: int | None = None  # k in the encoder; None -> num_classes (background included)
    dim: int = 256  # D: feature width of encoder banks
    decoder_clusters: int | None = None  # None -> num_classes (official code: 10 always; a deviation)
    decoder_dim: int = 128
    warmup_steps: int = 2000  # optimiser steps of pool filling before k-means (official: forward calls)
    write_momentum: float = 0.3  # slot <- (1 - m) slot + m feature
    phi_momentum: float = 0.95  # momentum copy of phi used for routing the bank update
    k_init: int | None = None  # None -> slots // 2
    k_low: float = 0.25  # K stays in [k_low * M, k_high * M]
    k_high: float = 0.75
    k_policy: Literal["reset", "clamp"] = "reset"  # official: out-of-range K resets to M/2
    k_delay_steps: int = 0  # steps after warm-up before K follows the loss (official: 100 epochs)
    share_decoder_k: bool = True  # official: decoder banks keep K = M/2 forever
    kmeans_iters: int = 50
    # how a bank starts at the end of the warm-up: "kmeans" (official: k-means of random phi features)
    # or "labels" (block c from cells labelled c, prototype = their mean; needs clusters = classes);
    # None: "labels" for lite, "kmeans" for the paper preset
    bank_init: str | None = None
    # a class-seeded bank after its warm-up: W-LD writes each labelled cell into its class's block
    # instead of the nearest prototype's, so cluster c stays class c (issue 30; off: the official routing)
    tied_writes: bool = False
    # weight of the cluster loss of a class-seeded bank after its warm-up: cross-entropy of every feature
    # cell's cosine similarities to the prototypes (divided by ``prototype_temperature``) against the
    # classes it holds, on theta (what the read routes) and phi (what the bank stores), so that the
    # prototype nearest a cell is its class's (issue 30); 0: off, the official bank
    prototype_loss: float = 0.0
    prototype_temperature: float = 0.1
    seed: int = 0


@dataclass
class ModelConfig:
    """Everything needed to rebuild a network, stored in every checkpoint."""

    preset: Literal["lite", "paper"] = "lite"
    num_classes: int = 2  # background included
    in_channels: int = 1
    class_names: list[str] | None = None  # index -> name, background first
    # index -> the user's label value (engine/classes.ClassTable): a painting with values 5, 21, 52 is a
    # 4-class model whose outputs carry 5, 21, 52 again. None: index = value (0, 1, ..., num_classes - 1)
    class_values: list[int] | None = None
    img_size: int | None = None  # network input side; None -> preset default (paper 256, lite 128)
    lite_width: int = 32  # channels of the lite encoder's first stage (doubles per stage)
    lite_depths: tuple[int, int, int, int] = (1, 1, 2, 1)  # DMW-LA modules per lite encoder stage
    # lite: decode on to the input size through skips from a shallow 1/1 and 1/2 path (a fifth head);
    # checkpoints written before this field existed decode to 1/4 (see from_dict)
    lite_full_res: bool = True
    # lite: the stages (1 = 1/4 ... 4 = 1/32) whose encoder and decoder carry DMW-LA; the others are
    # plain convolutions. At 1/16 and 1/32 attention is cheap: stages 1-2 cost 0.22 of a 0.70 s step
    # (2 threads) and did not score higher (docs/method.md, "Defaults and why"). Checkpoints without the field
    # had it at every stage (see from_dict)
    lite_memory_stages: tuple[int, ...] = (3, 4)
    # lite: what the prediction is: the "sum" of every head's logits (the paper) or the "finest" head
    # alone, the coarser heads being training-only auxiliaries (nnU-Net's deep supervision); the sum
    # adds the 1/32 head's blur to thin organs (docs/method.md, "Defaults and why"). Checkpoints without
    # the field predicted the sum (see from_dict)
    lite_prediction: str = "finest"
    # 2.5D input: the network also sees this many neighbouring slices on each side as extra channels
    # (clamped at the volume's ends), so in_channels becomes 2 * slice_context + 1. None: 0, one slice,
    # for both presets (the paper's network sees one slice; lite saw 1 neighbour per side until it
    # scored lower with them at about 500 steps on the phantom and the MR lesion; docs/method.md,
    # "Defaults and why"). Checkpoints without the field saw one slice (see from_dict)
    slice_context: int | None = None
    faithful_dsgim: bool = False  # reproduce the official DS-GIM, bugs included
    faithful_eval_updates: bool = False  # official code also writes the bank in eval(); off by default
    # False: every DMW-LA module is an identity (the plain ablation). None: True for the paper preset
    # (the faithful Sim-MPNet), False for lite, because at equal time on a 2-core CPU the bank did not
    # make the lite network score higher on average over four volumes (docs/method.md, "Defaults and why")
    use_memory: bool | None = None
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    norm: NormConfig = field(default_factory=NormConfig)

    def __post_init__(self) -> None:
        self.lite_memory_stages = tuple(int(s) for s in self.lite_memory_stages)
        if self.slice_context is None:
            self.slice_context = 0
        if not 0 <= self.slice_context <= 3:
            raise ValueError(f"slice_context takes 0-3 neighbouring slices per side, got {self.slice_context}")
        if self.slice_context:
            stacked = 2 * self.slice_context + 1
            # 1, or the stack of any context: dataclasses.replace(config, slice_context=2) on a config
            # whose context 1 already set in_channels = 3 must widen it, not fail
            if self.in_channels not in {1} | {2 * c + 1 for c in range(1, 4)}:
                raise ValueError(
                    f"slice_context={self.slice_context} feeds {stacked} slices as channels; "
                    f"in_channels={self.in_channels} cannot hold them"
                )
            self.in_channels = stacked
        if any(s not in (1, 2, 3, 4) for s in self.lite_memory_stages):
            raise ValueError(f"lite_memory_stages takes stage numbers 1-4, got {list(self.lite_memory_stages)}")
        if self.lite_width < 1:
            raise ValueError(f"lite_width is the first stage's channel count: 1 or more, got {self.lite_width}")
        if self.lite_prediction not in ("sum", "finest"):
            raise ValueError(f"unknown lite_prediction {self.lite_prediction!r}; choose 'sum' or 'finest'")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.num_classes < 2:
            raise ValueError(
                f"num_classes must be at least 2 (background + one class), got {self.num_classes}"
            )
        if self.class_values is not None:
            self.class_values = [int(v) for v in self.class_values]
            if len(self.class_values) != self.num_classes:
                raise ValueError(f"{len(self.class_values)} class values given for {self.num_classes} classes")
            if self.class_values[0] != 0 or self.class_values != sorted(set(self.class_values)):
                raise ValueError(f"class values must start at 0 (background) and increase, got {self.class_values}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names given for {self.num_classes} classes")
        if self.use_memory is None:
            self.use_memory = self.preset == "paper"
        if self.img_size is None:
            self.img_size = 256 if self.preset == "paper" else 128
        if self.img_size < 32 or self.img_size % 32:  # five stride-2 stages in both presets
            raise ValueError(f"img_size must be a positive multiple of 32, got {self.img_size}")
        if isinstance(self.memory, dict):
            self.memory = _from_dict(MemoryConfig, self.memory)
        if self.memory.bank_init is None:  # a copy: a MemoryConfig shared by two presets keeps its None
            init = "kmeans" if self.preset == "paper" else "labels"
            self.memory = dataclasses.replace(self.memory, bank_init=init)
        if self.memory.bank_init not in ("kmeans", "labels"):
            raise ValueError(f"unknown memory.bank_init {self.memory.bank_init!r}; choose 'kmeans' or 'labels'")
        if isinstance(self.norm, dict):
            self.norm = _from_dict(NormConfig, self.norm)

    @property
    def names(self) -> list[str]:
        """Class names by index, falling back to ``background, class <value>, ...``."""
        if self.class_names:
            return list(self.class_names)
        values = self.class_values or list(range(self.num_classes))
        return ["background"] + [f"class {v}" for v in values[1:]]

    def with_cluster_bank(self) -> ModelConfig:
        """This config with a memory bank laid out for reading its clusters (the Clusters views, issue 30).

        Lite's bank moves to stage 1 (cells of 4 input pixels: at lite's usual 16 and 32 even a perfect
        classifier's cells mix organs, benchmarks/clusters.py --ceiling); the bank is class-seeded, W-LD
        writes each cell into its class's block at momentum 0.03 (at the paper's 0.3 prototypes move faster
        than features follow), and the cluster loss ties every cell to its class's prototypes. The paper
        preset keeps its layout and gets the rest. What it costs: docs/method.md, "Reading the clusters".
        """
        memory = dataclasses.replace(self.memory, bank_init="labels", tied_writes=True, prototype_loss=1.0,
                                     write_momentum=0.03)
        stages = (1,) if self.preset == "lite" else self.lite_memory_stages
        return dataclasses.replace(self, use_memory=True, lite_memory_stages=stages, memory=memory)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        # keys a checkpoint lacks come from before the field: rebuild the network it was trained as
        return _from_dict(
            cls,
            {
                "lite_full_res": False,
                "lite_memory_stages": (1, 2, 3, 4),
                "lite_prediction": "sum",
                "slice_context": 0,
                "use_memory": True,  # the bank was always on before the field existed
                **d,
            },
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


DEFAULT_STEPS = 300  # without a time budget
UNCAPPED_STEPS = 10**9  # with one: the budget ends the run


@dataclass
class TrainConfig:
    """Fine-tuning and full-dataset training (engine/training)."""

    # optimiser steps; None: no cap when a time budget is given (the budget governs), else 300
    steps: int | None = None
    time_budget: float | None = None  # seconds of wall time, None = no limit
    batch_size: int = 8
    lr: float = 1e-3  # the paper's 1e-4 is for 300 epochs; a few-hundred-step fine-tune needs more
    # "poly": lr * (1 - progress)^0.9, progress = the larger of steps and time budget used (nnU-Net's
    # rule, so a time-boxed run ends on small steps); "constant": the official code's choice
    lr_schedule: str = "poly"
    weight_decay: float = 1e-4
    ce_weight: float = 0.3
    dice_weight: float = 0.7
    # which head sums the loss supervises: "subsets" (the paper: every non-empty subset, 31 terms for
    # five heads), "heads" (each head alone and all of them: n + 1 terms) or "auxiliary" (each head
    # alone, weights 1, 1/2, 1/4 ... from the finest; engine/losses.py). None: "subsets" for the
    # paper preset; for lite "auxiliary" when it predicts from its finest head, else "heads"
    deep_supervision: str | None = None
    seed: int = 0
    augment: bool = True
    # the paper's right-angle rotations and flips on top of small rotations, scaling and intensity.
    # They map the left kidney onto the right one: off by default (a real abdominal CT, 6 painted
    # slices, 180 s: mean Dice 0.593-0.662 with them, 0.688 without; kidney_left 0.42 with them)
    rot_flip: bool = False
    # train on each class's share of every model pixel (the painted map filtered like the image)
    # rather than on one pixel in four-by-four kept by nearest neighbour: thin organs keep their
    # extent at 128 (engine/slices.resize_soft_labels; docs/method.md, "Training")
    soft_labels: bool = True
    # lite fine-tunes: after training, score the finest head and the sum of heads on the painted
    # slices and keep the better one as ModelConfig.lite_prediction (engine/answer.py); False keeps
    # the config's choice. After ~150 steps the sum is better, after ~250 the finest head
    choose_answer: bool = True
    device: str = "auto"
    amp: bool = True  # bf16/fp16 autocast where the device gains from it
    val_fraction: float = 0.2  # full-dataset training: share of cases held out for validation
    val_every: int = 100  # steps between validations (full-dataset training)
    threads: int | None = None  # CPU threads for torch; None -> every core (engine.device.configure_threads)

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"steps must be 0 or more, got {self.steps}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"the time budget must be a positive number of seconds, got {self.time_budget}")
        if self.batch_size < 1:
            raise ValueError(f"the batch must hold at least one slice, got batch size {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"the learning rate must be positive, got {self.lr}")
        if self.lr_schedule not in ("poly", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose 'poly' or 'constant'")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"the validation share must be in [0, 1), got {self.val_fraction}")
        if self.val_every < 1:
            raise ValueError(f"validation every {self.val_every} steps: give 1 or more")

    @property
    def step_cap(self) -> int:
        """The most steps the run may take: ``steps``, or unbounded under a time budget, else 300."""
        if self.steps is not None:
            return self.steps
        return UNCAPPED_STEPS if self.time_budget else DEFAULT_STEPS

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, d)


@dataclass
class InferConfig:
    """Slice-wise prediction (engine/inference)."""

    device: str = "auto"  # auto | cpu | cuda | mps
    batch_size: int = 8
    amp: bool = True
    threads: int | None = None  # CPU threads for torch; None -> every core (engine.device.configure_threads)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"the batch must hold at least one slice, got batch size {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InferConfig:
        return _from_dict(cls, d)


PRETRAIN_METHODS = ("supercl", "macl")


@dataclass
class PretrainConfig:
    """Self-supervised pre-training of the lite encoder (engine/pretraining; research/pretraining.md §4.3)."""

    method: Literal["supercl", "macl"] = "supercl"  # supercl: the encoder; macl: also the first decoder stages
    steps: int = 500  # optimiser steps; ``time_budget`` may stop earlier
    time_budget: float | None = None  # seconds of wall time, None = no limit (at least one step is taken)
    batch_size: int = 8  # slices per step, drawn from all volumes
    lr: float = 0.01  # initial SGD rate (the released scripts'), cosine-decayed to 0
    seed: int = 0
    device: str = "auto"
    # slices closer than this in relative position are positives (both papers: 0.1); None: the same
    # slice only, for volumes that do not cover the same anatomy
    position_threshold: float | None = 0.1
    n_segments: int | None = None  # SLIC superpixels per slice; None: the papers' density for the input size
    amp: bool = True
    threads: int | None = None  # CPU threads; None -> every core (engine.device.configure_threads)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainConfig:
        return _from_dict(cls, d)


def config_from_json(text: str) -> ModelConfig:
    """Rebuild a ``ModelConfig`` from the JSON a checkpoint carries."""
    return ModelConfig.from_dict(json.loads(text))


def _to_plain(obj: Any) -> Any:
    # tuples become lists so that JSON round trips compare equal after from_dict
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    kwargs = {}
    for k, v in d.items():
        default = names[k].default
        # restore tuples for fields whose default is a tuple (JSON has only lists)
        if isinstance(v, list) and isinstance(default, tuple):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)
