"""Which answer a fine-tuned lite network keeps: its finest head, or the sum of all its heads.

The finest head is the better answer once it has learned (+0.02-0.03 mean Dice after about 450 steps,
docs/experiments/2026-12-03-finest-head-answer.md), but it sits behind a full-resolution path that
starts from random weights, so for the first 150-250 steps the sum of the five heads is better
(phantom, 150 steps: 0.854 against 0.747 on the slices never painted,
docs/experiments/2026-12-03-finer-grid-answer-after-training.md). A short run, such as the Fine-tune
widget's default (120 s on one thread, about 130 steps), must not hand the user the weaker one. Both
answers are scored on the painted slices, which ranked them as the unpainted slices did at every step
count measured (same file), and the better one becomes the model's answer, so its checkpoint predicts
with it.

The sum must win by :data:`SUM_MARGIN`: in that table it won by 0.07-0.15 wherever it was the better
answer, while on the dev CT after 300 steps it led the finest head by 0.002 on the painted slices and
trailed it by 0.02 elsewhere; the demo kept the sum on such near-ties and printed 0.80 instead of 0.89.
"""

from __future__ import annotations

import numpy as np
import torch

from ...config import ModelConfig
from ...metrics import dice
from .slice_set import SliceSet

__all__ = ["ANSWERS", "SUM_MARGIN", "answer_scores", "choose_answer", "describe_answer"]

#: ``ModelConfig.lite_prediction`` value -> what the user reads
ANSWERS = {"finest": "finest head", "sum": "sum of heads"}
#: how much better on the painted slices the sum of heads must score to be kept (a near-tie keeps the
#: finest head, the better answer once it has learned)
SUM_MARGIN = 0.02


@torch.inference_mode()
def answer_scores(model: torch.nn.Module, data: SliceSet, batch: int = 8) -> dict[str, float]:
    """Mean foreground Dice of each answer on the training slices, on the model grid.

    Args:
        model: a lite ``SimMPNet`` (its mode is restored afterwards).
        data: the slices it was trained on: (N, C, S, S) images and their labels or class fractions.
    Returns:
        ``{"finest": dice, "sum": dice}``: Dice pooled over all slices per class (``metrics.dice``), then
        averaged over the painted foreground classes; unknown pixels (scribbles) are not scored.
    """
    was_training = model.training
    device = next(model.parameters()).device
    preds: dict[str, list[np.ndarray]] = {a: [] for a in ANSWERS}
    truths = []
    model.eval()
    try:
        for start in range(0, len(data), batch):
            heads = model(data.images[start : start + batch].to(device), all_heads=True)
            labels = data.labels[start : start + batch]
            # fractions: the majority; a pixel less than half known (scribbles) is left out of the score
            # by setting it to background in both maps, which no foreground Dice counts
            known = (labels.sum(1) >= 128 if labels.dim() == 4 else labels >= 0).numpy()
            truths.append(np.where(known, (labels.argmax(1) if labels.dim() == 4 else labels).numpy(), 0))
            for name, logits in (("finest", heads[-1]), ("sum", torch.stack(heads).sum(0))):
                preds[name].append(np.where(known, logits.argmax(1).cpu().numpy(), 0))
    finally:
        model.train(was_training)
    truth = np.concatenate(truths)
    painted = [int(c) for c in np.unique(truth) if c > 0]
    if not painted:
        return {name: float("nan") for name in ANSWERS}
    return {name: float(dice(np.concatenate(p), truth, labels=painted).nanmean()) for name, p in preds.items()}


def choose_answer(model: torch.nn.Module, data: SliceSet) -> tuple[ModelConfig, dict[str, float]]:
    """Keep the answer that scores better on the painted slices; the sum must win by ``SUM_MARGIN``.

    Returns the model's (possibly updated) config, which the model now answers with
    (``SimMPNet.answer_with``), and the scores. The paper preset always sums its heads, and a model
    built with ``faithful_eval_updates`` writes its bank in every eval forward, which scoring would do
    too: both are returned as they are, no scores.
    """
    config = model.config
    if config.preset != "lite" or config.faithful_eval_updates:
        return config, {}
    scores = answer_scores(model, data)
    best = "sum" if scores["sum"] > scores["finest"] + SUM_MARGIN else "finest"
    return model.answer_with(best), scores


def describe_answer(config: ModelConfig, scores: dict[str, float]) -> str:
    """``answers with its finest head (Dice on the painted slices 0.938; sum of heads 0.918)``; '' without scores."""
    if not scores:
        return ""
    chosen = config.lite_prediction
    other = next(a for a in ANSWERS if a != chosen)
    return (
        f"answers with its {ANSWERS[chosen]} (Dice on the painted slices {scores[chosen]:.3f}; "
        f"{ANSWERS[other]} {scores[other]:.3f})"
    )
