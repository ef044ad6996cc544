"""Training step time of the ``lite`` preset: with the memory bank (DMW-LA + W-LD) and without it.

One step is timed inside ``engine/training/loop.fit`` itself, with its defaults: batch sampling, augmentation,
forward under the trainer's autocast (bf16 on a CPU with fast bf16, else fp32), the deep-supervision loss
the trainer picks for the model (a new lite model's weighted auxiliary heads, coarse heads at their own
scale) on class-fraction targets, backward, AdamW and ``memory_step``; batch 8 at 128 x 128, 8 classes,
after the bank's warm-up (so the memory read and the W-LD write are in it). Bank on or off.
The context read is also timed alone at the lite stage-1 size with the fused kernel and with the
explicit reference, the two paths ``DMWLA(fused_attn=...)`` chooses between.

    python benchmarks/train_step.py --threads 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_section  # noqa: E402

from napari_smp.config import ModelConfig, TrainConfig  # noqa: E402
from napari_smp.engine.device import autocast_dtype  # noqa: E402
from napari_smp.engine.training.loop import default_supervision, fit  # noqa: E402
from napari_smp.engine.training.slice_set import SliceSet
from napari_smp.model import build_model  # noqa: E402
from napari_smp.model.attention import context_attention  # noqa: E402


def step_seconds(use_memory: bool, repeats: int, threads: int, amp: bool = True) -> float:
    """Median seconds between two of ``fit``'s steps, after 5 steps (the bank's 3-step warm-up among them)."""
    config = ModelConfig(preset="lite", num_classes=8, use_memory=use_memory)
    config = replace(config, memory=replace(config.memory, warmup_steps=3))
    torch.manual_seed(0)
    model = build_model(config)
    x = torch.rand(16, 1, config.img_size, config.img_size)
    y = torch.randint(0, 8, (16, config.img_size, config.img_size))
    y = torch.nn.functional.one_hot(y, 8).permute(0, 3, 1, 2).float()  # the trainer's fraction targets
    train = TrainConfig(steps=5 + repeats, device="cpu", threads=threads, amp=amp)
    reports, _ = fit(model, SliceSet(x, y), train)
    ends = [r.elapsed for r in reports]
    return statistics.median(b - a for a, b in pairwise(ends[4:]))


def context_seconds(fused: bool, repeats: int) -> float:
    """Median seconds of forward + backward of one context read, (8, 32*32, 32), the module's layout."""
    maps = [torch.randn(8, 32, 32, 32, requires_grad=True) for _ in range(3)]
    times = []
    for i in range(2 + repeats):
        q, k, v = (m.flatten(2).transpose(1, 2) for m in maps)
        start = time.perf_counter()
        context_attention(q, k, v, fused=fused).sum().backward()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    for threads in args.threads:
        ours, plain = step_seconds(True, args.repeats, threads), step_seconds(False, args.repeats, threads)
        plain32 = step_seconds(False, args.repeats, threads, amp=False)
        torch.set_num_threads(threads)  # for the context reads, which run outside fit
        fused, ref = context_seconds(True, args.repeats), context_seconds(False, args.repeats)
        rows.append((threads, ours, plain, plain32, fused, ref))
        print(
            f"{threads} thread(s): step ours {ours:.3f} s, plain {plain:.3f} s (fp32 {plain32:.3f} s); "
            f"stage-1 context read fused {fused * 1e3:.0f} ms, reference {ref * 1e3:.0f} ms",
            flush=True,
        )
    precision = autocast_dtype(torch.device("cpu"))
    lines = [
        "The fine-tune's step, timed inside `engine/training/loop.fit` (batch sampling and augmentation included): "
        "lite defaults, batch 8, 128 x 128, 8 classes, "
        f"the trainer's loss for the model (`{default_supervision(ModelConfig(preset='lite'))}`) on class-fraction "
        f"targets, under the trainer's autocast ({'bf16' if precision is not None else 'fp32: no fast bf16 here'}); "
        f"median of {args.repeats} steps after the bank's warm-up. plain fp32: the same step without autocast. "
        "Context read = forward + backward of one stage-1 context attention (8 images x 1024 tokens x D 32), "
        "fp32; the lite default runs DMW-LA at stages 3-4 only.",
        "",
        "| threads | step, ours (DMW-LA + W-LD) | step, plain (no memory, the lite default) | ours / plain "
        "| step, plain fp32 | context read, fused | context read, reference |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t} | {o:.3f} s | {p:.3f} s | {o / p:.2f} | {p32:.3f} s | {f * 1e3:.0f} ms | {r * 1e3:.0f} ms |"
        for t, o, p, p32, f, r in rows
    ]
    if not args.no_write:
        write_section("Training step", "\n".join(lines), packages=("torch",), script="benchmarks/train_step.py")


if __name__ == "__main__":
    main()
