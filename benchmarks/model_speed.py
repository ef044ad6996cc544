"""Size and raw speed of the two presets: parameters, MACs, forward slices/s (fp32 and bf16).

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions, matrix products
and attention; FLOPs / 2), at the preset's input size, batch 1. Each timing is the median of
several forwards after a warm-up. On a CUDA machine the ``paper`` preset is also timed in bf16 at a
large batch.

    python benchmarks/model_speed.py [--presets lite paper] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from napari_smp.config import ModelConfig  # noqa: E402
from napari_smp.engine.device import _cpu_has_fast_bf16, autocast, configure_threads  # noqa: E402
from napari_smp.model import build_model  # noqa: E402


def count_macs(model: torch.nn.Module, x: torch.Tensor) -> float:
    # FlopCounterMode has no formula for the CPU flash-attention kernel and would count the context
    # reads as free: count them on the explicit reference path, which does the same products
    fused = [(m, m.fused_attn) for m in model.modules() if hasattr(m, "fused_attn")]
    for m, _ in fused:
        m.fused_attn = False
    counter = FlopCounterMode(display=False)
    try:
        with torch.inference_mode(), counter:
            model(x)
    finally:
        for m, flag in fused:
            m.fused_attn = flag
    return counter.get_total_flops() / 2


def slices_per_second(model, x, device, dtype, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            with autocast(device, dtype):
                model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first forward warms caches and allocators
                times.append(time.perf_counter() - t)
    return x.shape[0] / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["lite", "paper"])
    ap.add_argument("--gpu-batch", type=int, default=256)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cpu = torch.device("cpu")
    threads = configure_threads()
    native_bf16 = _cpu_has_fast_bf16()
    rows = []
    for preset in args.presets:
        cfg = ModelConfig(preset=preset, num_classes=9)
        model = build_model(cfg).eval()
        size = cfg.img_size
        params = sum(p.numel() for p in model.parameters()) / 1e6
        macs = count_macs(model, torch.rand(1, 1, size, size)) / 1e9
        batch, reps = (8, 3) if preset == "lite" else (2, 2)
        x = torch.rand(batch, 1, size, size)
        fp32 = slices_per_second(model, x, cpu, None, reps)
        # without native bf16 kernels oneDNN falls back to a reference convolution 10-100x slower than
        # fp32; the paper preset would take many minutes, so it is timed only where bf16 is native
        if native_bf16 or preset == "lite":
            bf16 = f"{slices_per_second(model, x, cpu, torch.bfloat16, reps):.2f}"
        else:
            bf16 = "not timed (no native bf16)"
        row = [preset, f"{size}x{size}", f"{params:.2f}", f"{macs:.2f}", f"{fp32:.2f}", bf16, "-"]
        if torch.cuda.is_available():
            dev = torch.device("cuda")
            gmodel = model.to(dev)
            xb = torch.rand(args.gpu_batch, 1, size, size, device=dev)
            row[-1] = (
                f"{slices_per_second(gmodel, xb, dev, torch.bfloat16, 5):.0f} "
                f"({torch.cuda.get_device_name()}, batch {args.gpu_batch})"
            )
            model.cpu()
        rows.append(row)
        print(" | ".join(row), flush=True)
    if args.no_write:
        return
    lines = [
        f"Random-initialised networks with 9 classes; CPU timings with {threads} torch thread(s) (the engine's "
        "default leaves one core free), median of repeated forwards after a warm-up; bf16 = `torch.autocast`. "
        "Native bf16 kernels on this CPU: "
        + ("yes." if native_bf16 else "no: bf16 runs a slow reference path, so the engine stays in fp32 here."),
        "",
        "| preset | input | parameters (M) | MACs (G) | CPU fp32 slices/s | CPU bf16 slices/s | GPU bf16 slices/s |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    write_section(
        "Model size and speed", "\n".join(lines), packages=("torch", "numpy"), script="benchmarks/model_speed.py"
    )


if __name__ == "__main__":
    main()
