"""Honest results: what a front end must say about a fine-tune or a completion before a user trusts it.

A model that cannot reproduce the slices it was painted on is no guide anywhere else, and a completion
that fell back to propagation is not what the user asked for. Both are said in the status line, a
warning notification and the result layer's name (issue 27 item 6). numpy only (no torch).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["POOR_FIT_DICE", "painted_fit", "result_flag", "flagged_name"]

#: below this Dice on its own painted slices a model is flagged as a poor fit (a lesion model at 0.000
#: drew a speck in a corner of every slice without a word: issue 27)
POOR_FIT_DICE = 0.5


def painted_fit(answers: Mapping[str, float]) -> float:
    """The best painted-slice Dice among a model's answers (``TrainResult.answers``); NaN when unscored."""
    scores = [float(v) for v in answers.values() if v == v]
    return max(scores) if scores else float("nan")


def result_flag(answers: Mapping[str, float] | None, sources: str | None = None, network: bool = True) -> str:
    """What is wrong with a result, in a few words for its name, or '' for a good one.

    Args:
        answers: the fine-tuned network's painted-slice Dice by answer (None: no network was trained).
        sources: a completion's ``Completion.sources`` (None for a fine-tune alone).
        network: whether a network was asked for (False: propagation alone on purpose, not a flag).

    Returns:
        ``"propagation only"`` when a completion asked for a network but returned propagation alone,
        ``"poor fit: painted-slice Dice 0.12"`` when the network's best answer scored below
        ``POOR_FIT_DICE`` on its own painted slices, else ''.
    """
    if network and sources == "propagation":
        return "propagation only"
    fit = painted_fit(answers or {})
    if fit == fit and fit < POOR_FIT_DICE:
        return f"poor fit: painted-slice Dice {fit:.2f}"
    return ""


def flagged_name(base: str, flag: str) -> str:
    """``liver CT completion (propagation only)``; ``base`` alone for a good result."""
    return f"{base} ({flag})" if flag else base
