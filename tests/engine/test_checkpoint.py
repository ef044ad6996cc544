"""Safetensors checkpoints: exact round trips with memory state, metadata, and refusals."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from napari_smp.config import MemoryConfig, ModelConfig
from napari_smp.engine.checkpoint import (
    CheckpointError,
    free_checkpoint_path,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from napari_smp.model import SimMPNet, build_model


def _config(num_classes: int = 3) -> ModelConfig:
    return ModelConfig(
        preset="lite",
        num_classes=num_classes,
        img_size=64,
        lite_width=8,
        class_names=["background", "liver", "spleen"][:num_classes] if num_classes == 3 else None,
        memory=MemoryConfig(slots=8, warmup_steps=2, kmeans_iters=5),
        use_memory=True,  # the banks' tensors must round-trip too (lite's default is without them)
    )


def _trained(steps: int = 4) -> tuple[SimMPNet, ModelConfig]:
    torch.manual_seed(0)
    config = _config()
    model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(steps):
        x = torch.randn(2, config.in_channels, 64, 64, generator=torch.Generator().manual_seed(i))
        loss = sum(o.square().mean() for o in model(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.memory_step(loss.item())
    return model.eval(), config


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimMPNet]:
    model, config = _trained()
    path = save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "m.safetensors", model, config, steps=4, note="test"
    )
    return path, model


def test_round_trip_restores_logits_and_every_bank_tensor(saved: tuple[Path, SimMPNet]) -> None:
    path, model = saved
    assert not any(m.warming_up for _, m in model.memory_modules())  # W-LD writes happened
    loaded, config = load_checkpoint(path)
    assert not loaded.training and config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.randn(2, config.in_channels, 64, 64, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x), strict=True):
            assert torch.equal(a, b)
    assert loaded.k == model.k
    tensors = load_file(str(path))
    for name in ("pool", "prototypes", "phi_ema", "step", "k_update", "filled"):
        assert f"encoder.stages.2.blocks.1.{name}" in tensors


def test_info_reads_metadata_only(saved: tuple[Path, SimMPNet]) -> None:
    path, model = saved
    info = read_checkpoint_info(path)
    assert info["preset"] == "lite" and info["num_classes"] == 3
    assert info["class_names"] == ["background", "liver", "spleen"]
    assert info["extra"] == {"steps": 4, "note": "test"}
    assert ModelConfig.from_dict(info["config"]) == model.config
    assert isinstance(info["version"], str)


def test_expectations_are_checked(saved: tuple[Path, SimMPNet]) -> None:
    path, _ = saved
    with pytest.raises(CheckpointError, match="trained for 3 classes, but 5 are needed"):
        load_checkpoint(path, expect_num_classes=5)
    with pytest.raises(CheckpointError, match="'lite' model, but a 'paper' one"):
        load_checkpoint(path, expect_preset="paper")
    model, _ = load_checkpoint(path, expect_num_classes=3, expect_preset="lite")
    assert model.config.num_classes == 3


def test_missing_tensor_is_refused(saved: tuple[Path, SimMPNet], tmp_path: Path) -> None:
    path, _ = saved
    tensors = load_file(str(path))
    del tensors["decoder.memory.0.pool"]
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata=meta)
    with pytest.raises(CheckpointError, match="missing decoder.memory.0.pool"):
        load_checkpoint(broken)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (self.marker,))  # type: ignore[return-value]


def test_pickle_files_are_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    raw = tmp_path / "evil.pth"
    raw.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    zipped = tmp_path / "evil.pt"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Payload(marker)))
    real = tmp_path / "real.pt"
    torch.save({"w": torch.zeros(2)}, real)
    for path in (raw, zipped, real):
        with pytest.raises(CheckpointError, match="pickle"):
            load_checkpoint(path)
        with pytest.raises(CheckpointError, match="pickle"):
            read_checkpoint_info(path)
    assert not marker.exists()


def test_other_bad_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "absent.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a napari-smp checkpoint"):
        load_checkpoint(foreign)


def test_write_is_atomic_and_extras_must_be_json(tmp_path: Path) -> None:
    model, config = build_model(_config(2)), _config(2)
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "x.safetensors", model, config, bad=object())
    out = save_checkpoint(tmp_path / "sub" / "x.safetensors", model, config)
    assert [p.name for p in out.parent.iterdir()] == ["x.safetensors"]  # no temporary left behind
    meta_config = json.loads(json.dumps(read_checkpoint_info(out)["config"]))
    assert meta_config["num_classes"] == 2


def test_free_checkpoint_path_never_returns_an_existing_file(tmp_path):
    p = tmp_path / "m.safetensors"
    assert free_checkpoint_path(p) == p
    p.write_bytes(b"x")
    (tmp_path / "m-2.safetensors").write_bytes(b"x")
    assert free_checkpoint_path(p) == tmp_path / "m-3.safetensors"
    assert free_checkpoint_path(tmp_path / "n") == tmp_path / "n.safetensors"
