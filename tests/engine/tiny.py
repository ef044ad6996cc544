"""Tiny models and volumes for engine tests: everything runs in seconds on 2 CPU cores."""

from __future__ import annotations

__all__ = ["tiny_config", "toy_volume"]

import numpy as np

from napari_smp.config import MemoryConfig, ModelConfig, NormConfig


def tiny_config(num_classes: int = 3, warmup: int = 3) -> ModelConfig:
    return ModelConfig(
        preset="lite",
        num_classes=num_classes,
        img_size=32,
        lite_width=8,
        lite_depths=(1, 1, 1, 1),
        lite_memory_stages=(1, 2, 3, 4),  # DMW-LA at every stage, so every module kind is exercised
        slice_context=0,  # one slice per input; 2.5D has its own tests (test_slice_context.py)
        use_memory=True,  # the bank under test (lite's default is without it)
        memory=MemoryConfig(slots=8, dim=16, decoder_dim=16, warmup_steps=warmup, kmeans_iters=5),
        norm=NormConfig(mode="percentile"),
    )


def toy_volume(depth: int = 10, size: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two bright/dark discs that drift along z; class 1 bright, class 2 dark, over textured noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:depth, :size, :size]
    labels = np.zeros((depth, size, size), np.uint8)
    c1 = ((y - 14 - z * 0.3) ** 2 + (x - 13) ** 2) < 49
    c2 = ((y - 26) ** 2 + (x - 27 + z * 0.3) ** 2) < 36
    labels[c1] = 1
    labels[c2] = 2
    image = rng.normal(0, 0.15, labels.shape) + np.choose(labels, [0.0, 1.0, -1.0])
    return image.astype(np.float32), labels
