"""Inference: a trained network applied to whole volumes, slice by slice, and its clusters read out."""

from .predictor import CancelFn, ClusterMaps, Prediction, Predictor, ProgressFn

__all__ = ["CancelFn", "ClusterMaps", "Prediction", "Predictor", "ProgressFn"]
