"""Honest results: a poor fit of the painted slices and a propagation-only completion are named as such."""

from __future__ import annotations

import math

from napari_smp.engine.result_flags import POOR_FIT_DICE, flagged_name, painted_fit, result_flag


def test_the_best_scored_answer_is_the_fit_and_no_score_is_nan():
    assert painted_fit({"finest": 0.09, "sum": 0.49}) == 0.49
    assert painted_fit({"finest": float("nan"), "sum": 0.7}) == 0.7
    assert math.isnan(painted_fit({})) and math.isnan(painted_fit({"sum": float("nan")}))


def test_flags_say_what_went_wrong_and_a_good_result_has_none():
    # a completion that asked for a network and fell back to propagation
    assert result_flag({"finest": 0.09, "sum": 0.49}, "propagation") == "propagation only"
    # propagation alone on purpose is not a flag; a weak network with it is
    assert result_flag(None, "propagation", network=False) == ""
    # a network used (or a fine-tune alone) that fits its own painted slices poorly
    assert result_flag({"finest": 0.12}, "propagation + network") == "poor fit: painted-slice Dice 0.12"
    assert result_flag({"finest": 0.0, "sum": 0.0}) == "poor fit: painted-slice Dice 0.00"
    assert result_flag({"finest": POOR_FIT_DICE}) == ""  # the threshold itself passes
    assert result_flag({"finest": 0.3, "sum": 0.91}, "propagation + network") == ""
    assert result_flag({}) == "" and result_flag(None) == ""  # unscored (paper preset): nothing to say
    assert flagged_name("liver CT completion", "propagation only") == "liver CT completion (propagation only)"
    assert flagged_name("liver CT completion", "") == "liver CT completion"
