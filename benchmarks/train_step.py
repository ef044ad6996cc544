"""Training step time of the ``lite`` preset: with the memory bank (DMW-LA + W-LD) and without it.

One step = forward, the 15-subset deep-supervision loss, backward, AdamW and ``memory_step``, batch 8
at 128 x 128, 8 classes, after the bank's warm-up (so the memory read and the W-LD write are in it).
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
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_section  # noqa: E402

from napari_smp.config import ModelConfig  # noqa: E402
from napari_smp.engine.losses import deep_supervision_loss  # noqa: E402
from napari_smp.model import build_model  # noqa: E402
from napari_smp.model.attention import context_attention  # noqa: E402


def step_seconds(use_memory: bool, repeats: int) -> float:
    """Median seconds per training step after a 3-step warm-up of the bank."""
    config = ModelConfig(preset="lite", num_classes=8, use_memory=use_memory)
    config = replace(config, memory=replace(config.memory, warmup_steps=3))
    torch.manual_seed(0)
    model = build_model(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(8, 1, config.img_size, config.img_size)
    y = torch.randint(0, 8, (8, config.img_size, config.img_size))
    times = []
    for i in range(5 + repeats):
        start = time.perf_counter()
        loss = deep_supervision_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.memory_step(loss.item())
        if i >= 5:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        ours, plain = step_seconds(True, args.repeats), step_seconds(False, args.repeats)
        fused, ref = context_seconds(True, args.repeats), context_seconds(False, args.repeats)
        rows.append((threads, ours, plain, fused, ref))
        print(
            f"{threads} thread(s): step ours {ours:.3f} s, plain {plain:.3f} s; "
            f"stage-1 context read fused {fused * 1e3:.0f} ms, reference {ref * 1e3:.0f} ms",
            flush=True,
        )
    lines = [
        "lite preset, batch 8, 128 x 128, 8 classes, fp32; median of "
        f"{args.repeats} steps after the bank's warm-up. Context read = forward + backward of one "
        "stage-1 context attention (8 images x 1024 tokens x D 32).",
        "",
        "| threads | step, ours (DMW-LA + W-LD) | step, plain (no memory) | ours / plain "
        "| context read, fused | context read, reference |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t} | {o:.3f} s | {p:.3f} s | {o / p:.2f} | {f * 1e3:.0f} ms | {r * 1e3:.0f} ms |"
        for t, o, p, f, r in rows
    ]
    if not args.no_write:
        write_section("Training step", "\n".join(lines), packages=("torch",), script="benchmarks/train_step.py")


if __name__ == "__main__":
    main()
