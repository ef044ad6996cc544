"""Run by test_train_ddp under torchrun: full-dataset training with a tiny model on 2 CPU processes."""

import json
import sys

import numpy as np
import torch
import torch.distributed as dist

import napari_smp.engine.training.dataset as dataset_module
from napari_smp.config import TrainConfig
from napari_smp.engine.training.dataset import train_dataset

sys.path.insert(0, __file__.rsplit("/", 2)[0])  # tests/engine, where tiny.py lives
from tiny import tiny_config  # noqa: E402

root, out, report = sys.argv[1:4]
# two threads: the CPU kernels then return 1x1-conv weight gradients in another layout, which DDP warns
# about unless the parameters were laid out to match (model/blocks.nchw)
torch.set_num_threads(2)
grads = {}


def spy(step_report):
    grads.setdefault("steps", []).append(step_report.step)


built = []
_build = dataset_module.build_model


def keep(config):  # the model train_dataset builds and trains
    built.append(_build(config))
    return built[-1]


dataset_module.build_model = keep
# a time budget that never binds still feeds the learning-rate schedule: the ranks must agree on it
train = TrainConfig(
    steps=4, time_budget=600.0, batch_size=2, device="cpu", amp=False, val_every=2, val_fraction=0.34, threads=2
)
summary = train_dataset(root, out, tiny_config(), train, callback=spy)
rank = int(__import__("os").environ["RANK"])
weights = torch.cat([p.detach().flatten() for p in built[0].parameters()]).numpy()
np.save(f"{report}.{rank}.npy", weights)
with open(f"{report}.{rank}.json", "w") as f:
    json.dump(
        {
            "steps": summary.steps,
            "best": summary.best_dice,
            "val": summary.val_cases,
            "train": summary.train_cases,
            "seen": grads.get("steps", []),
            "initialized_after": dist.is_initialized(),
        },
        f,
    )
