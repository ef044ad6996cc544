"""The network keeps NCHW-contiguous activations, so every weight gradient has its parameter's strides.

DDP lays out each gradient bucket with its parameter's strides and warns, and copies, on every step
where a gradient arrives with others ("Grad strides do not match bucket view strides"). On the CPU
with two or more threads, a channels-last activation (a token-to-map reshape, a LayerNorm's permute)
makes the following 1x1 convolutions return their weight gradients channels-last strided.
"""

from __future__ import annotations

import pytest
import torch

from napari_smp.config import MemoryConfig, ModelConfig
from napari_smp.engine.training.losses import deep_supervision_loss
from napari_smp.model import build_model


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # one thread takes another kernel path, where the layouts always agree
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("use_memory", [True, False])
def test_weight_gradients_have_their_parameters_strides(two_threads, use_memory):
    torch.manual_seed(0)
    config = ModelConfig(num_classes=3, img_size=64, use_memory=use_memory,
                         memory=MemoryConfig(warmup_steps=1, kmeans_iters=3))
    model = build_model(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(3):  # the memory bank reads another way once warm-up has ended
        x, y = torch.randn(2, config.in_channels, 64, 64), torch.randint(0, 3, (2, 64, 64))
        opt.zero_grad(set_to_none=True)
        loss = deep_supervision_loss(model(x), y, 1.0, 1.0)
        loss.backward()
        opt.step()
        model.memory_step(loss.item())
        mismatched = [
            (name, p.stride(), p.grad.stride())
            for name, p in model.named_parameters()
            if p.grad is not None and p.grad.stride() != p.stride()
        ]
        assert mismatched == [], f"step {step + 1}: {mismatched}"
