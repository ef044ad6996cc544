"""End-to-end slice-wise prediction: slices/s through ``Predictor`` and peak memory on a big CT.

Peak memory is the maximum resident set size of a fresh process that reads nothing but a
512x512x300 float32 volume (300 MiB by itself) and segments it with the ``lite`` preset; the
baseline line is the same process stopping before the prediction.

    python benchmarks/inference.py [--no-write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from napari_smp.config import InferConfig, ModelConfig
from napari_smp.engine.inference.predictor import Predictor
from napari_smp.model import build_model
preset, depth, amp, predict = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
rng = np.random.default_rng(0)
vol = rng.standard_normal((depth, 512, 512), dtype=np.float32) * 300
cfg = ModelConfig(preset=preset, num_classes=9)
pred = Predictor(build_model(cfg), cfg, InferConfig(device="auto", batch_size=8, amp=amp))
t = time.perf_counter()
if predict:
    pred.predict(vol[:2])  # warm-up
    t = time.perf_counter()
    pred.predict(vol)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "slices_per_s": depth / dt if predict else 0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "device": str(pred.device), "dtype": str(pred.dtype or "fp32").replace("torch.", "")}))
"""


def child(preset: str, depth: int, amp: bool, predict: bool = True) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, preset, str(depth), str(int(amp)), str(int(predict))],
        capture_output=True,
        text=True, encoding="utf-8", errors="replace",
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    # lite 512x512x100 is the target volume (15 s on 2 cores); the paper preset is slow on a CPU
    for preset, depth in (("lite", 100), ("paper", 8)):
        r = child(preset, depth, True)  # autocast only where the device gains from it (engine.device)
        rows.append(
            f"| {preset} | 512x512x{depth} | {r['dtype']} | {r['device']} | {r['seconds']:.1f} s | "
            f"{r['slices_per_s']:.2f} | - |"
        )
        print(rows[-1], flush=True)
    base = child("lite", 300, True, predict=False)
    big = child("lite", 300, True)
    rows.append(
        f"| lite | 512x512x300 | {big['dtype']} | {big['device']} | {big['seconds']:.1f} s | "
        f"{big['slices_per_s']:.1f} | {big['peak_mib']:.0f} MiB (baseline {base['peak_mib']:.0f} MiB) |"
    )
    print(rows[-1])
    if args.no_write:
        return
    lines = [
        "Random-initialised networks, 9 classes, batches of 8 slices, including normalisation, resizing to the "
        "model size and back, and the argmax, with each preset's default input and answer "
        f"(lite: {_lite_input()}); peak = max RSS of a fresh process; the engine's default threads (every core) "
        "and precision "
        "(bf16 autocast only where the CPU or GPU has native bf16). Target: a 512 x 512 x 100 CT within 15 s on 2 "
        "cores.",
        "",
        "| preset | volume (X x Y x Z) | precision | device | wall time | slices/s | peak memory |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    write_section("Inference", "\n".join(lines), packages=("torch", "numpy"), script="benchmarks/inference.py")


def _lite_input() -> str:
    """What the lite default sees and answers with, from its config (so the note cannot go stale)."""
    from napari_smp.config import ModelConfig
    from napari_smp.engine.training.answer import ANSWERS

    cfg = ModelConfig(preset="lite")
    seen = "one slice" if not cfg.slice_context else f"{2 * cfg.slice_context + 1} slices as channels"
    return f"{seen}, {cfg.img_size} x {cfg.img_size}, answering with its {ANSWERS[cfg.lite_prediction]}"


if __name__ == "__main__":
    main()
