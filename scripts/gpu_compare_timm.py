"""Compare the in-house MaxxViT-rmlp-small with timm's ``maxxvit_rmlp_small_rw_256``, stage by stage.

Run on a machine that has timm (and preferably a GPU); nothing is downloaded unless ``--weights`` names
a local file::

    python scripts/gpu_compare_timm.py                 # random timm init, copied into ours by name
    python scripts/gpu_compare_timm.py --weights maxxvit_rmlp_small_rw_256.sw_in1k.safetensors

Steps: build timm's model (``pretrained=False``; its init is then perturbed so layer scales, norms and
biases all matter, see :func:`_make_every_weight_matter`), check its state-dict names and shapes against
``tests/model/fixtures/maxxvit_rmlp_small_rw_256.json``, load its state dict into ours with
:func:`load_pretrained` (strict), then run both in eval mode, fp32 with TF32 off, on the same input and
print the max abs difference of the 4 stage outputs (timm's via forward hooks on ``stages.N``; the
last one after timm's final ``norm``, which is what our backbone returns). Exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_smp.model.maxxvit import MaxxVitRmlpSmall, load_pretrained  # noqa: E402

__all__ = ["main"]

FIXTURE = ROOT / "tests" / "model" / "fixtures" / "maxxvit_rmlp_small_rw_256.json"
TIMM_NAME = "maxxvit_rmlp_small_rw_256"


def _check_fixture(timm_state: dict[str, torch.Tensor]) -> bool:
    """Print any difference between timm's real state dict and the hand-derived fixture."""
    expected = json.loads(FIXTURE.read_text())
    actual = {k: list(v.shape) for k, v in timm_state.items()}
    only_timm = sorted(set(actual) - set(expected))
    only_fixture = sorted(set(expected) - set(actual))
    shape_diff = sorted(k for k in set(actual) & set(expected) if actual[k] != expected[k])
    order_same = list(actual) == list(expected)
    print(f"fixture check: {len(actual)} timm keys, {len(expected)} fixture keys, same order: {order_same}")
    for label, keys in (
        ("only in timm", only_timm),
        ("only in fixture", only_fixture),
        ("shape", shape_diff),
    ):
        for k in keys:
            print(f"  {label}: {k} timm={actual.get(k)} fixture={expected.get(k)}")
    return not (only_timm or only_fixture or shape_diff)


def _make_every_weight_matter(model: torch.nn.Module) -> None:
    """Perturb a fresh init so that a wrong name mapping cannot hide.

    At init every layer-scale ``gamma`` is 1e-6 (attention and MLP branches nearly vanish) and every
    LayerNorm / bias is 1 or 0 (swapping two of them changes nothing), so a plain random init would let
    layout or naming mistakes pass unnoticed.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.2, 1.0)
            elif p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))


def _timm_stage_outputs(model: torch.nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Stage outputs of a timm MaxxVit captured by hooks, plus its ``forward_features`` (final norm)."""
    captured: list[torch.Tensor] = []
    hooks = [s.register_forward_hook(lambda _m, _i, out: captured.append(out)) for s in model.stages]
    try:
        final = model.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    return captured, final


def _time_ms(fn, x: torch.Tensor, reps: int) -> float:
    for _ in range(2):
        fn(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", type=Path, default=None, help="local timm checkpoint to load into both")
    parser.add_argument("--keep-init", action="store_true", help="do not perturb timm's random init")
    parser.add_argument("--rtol", type=float, default=1e-4, help="tolerance relative to max |timm output|")
    parser.add_argument("--reps", type=int, default=10, help="timed forwards per model (0 to skip)")
    args = parser.parse_args(argv)

    import timm  # only needed here; the package itself never imports timm

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    print(f"timm {timm.__version__}, torch {torch.__version__}, device {device}")

    reference = timm.create_model(TIMM_NAME, pretrained=False)
    if args.weights is not None:
        timm.models.load_checkpoint(reference, str(args.weights), strict=True)
    elif not args.keep_init:
        _make_every_weight_matter(reference)
    reference = reference.eval().to(device)
    state = {k: v.detach().cpu() for k, v in reference.state_dict().items()}
    fixture_ok = _check_fixture(state)

    ours = MaxxVitRmlpSmall(in_chans=3, img_size=256)
    missing = load_pretrained(ours, state, strict_backbone=True)
    ours = ours.eval().to(device)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in reference.parameters())
    print(f"parameters: ours {n_ours:,}  timm {n_ref:,} (timm with head)  missing after load: {missing}")

    x = torch.randn(args.batch, 3, 256, 256, device=device)
    with torch.no_grad():
        theirs, theirs_final = _timm_stage_outputs(reference, x)
        mine = ours.forward_features(x)
    # our last output is after the final norm; compare it to timm's forward_features output
    theirs = theirs[:3] + [theirs_final]

    ok = fixture_ok
    print(f"\n{'output':<22}{'shape':<24}{'max|timm|':>12}{'max abs diff':>15}{'rel':>11}  ok")
    names = ["stages.0", "stages.1", "stages.2", "norm(stages.3)"]
    for name, a, b in zip(names, mine, theirs, strict=True):
        shape_ok = a.shape == b.shape
        scale = b.abs().max().item()
        diff = (a - b).abs().max().item() if shape_ok else float("nan")
        rel = diff / max(scale, 1e-12)
        good = shape_ok and rel <= args.rtol
        ok &= good
        verdict = "yes" if good else "NO"
        print(f"{name:<22}{str(tuple(a.shape)):<24}{scale:>12.4g}{diff:>15.3e}{rel:>11.2e}  {verdict}")

    if args.reps > 0:
        with torch.no_grad():
            t_ours = _time_ms(ours.forward_features, x, args.reps)
            t_ref = _time_ms(reference.forward_features, x, args.reps)
        print(f"\nforward time, batch {args.batch}: ours {t_ours:.2f} ms, timm {t_ref:.2f} ms")
    print("\nRESULT:", "match" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
