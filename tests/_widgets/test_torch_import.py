"""The plugin's threads import torch one at a time (two first imports at once can break torch), and no
widget module imports it when it loads (the first import takes about 1.5 s)."""

from __future__ import annotations

import subprocess
import sys
import threading

from napari_smp._widgets._controls import _devices
from napari_smp._widgets._jobs import TORCH_IMPORT_LOCK, EngineJob, import_torch


def _finishes_only_after_release(target) -> None:
    done = threading.Event()
    thread = threading.Thread(target=lambda: (target(), done.set()))
    with TORCH_IMPORT_LOCK:  # as if another thread were in the middle of torch's first import
        thread.start()
        assert not done.wait(0.5), "went on while another thread was importing torch"
    assert done.wait(30), "did not go on once the import was over"
    thread.join()


def test_device_list_waits_for_an_import_in_progress(qtbot):
    _finishes_only_after_release(_devices)


def test_job_waits_for_an_import_in_progress_before_running_its_work(qtbot):
    ran = threading.Event()

    def work(ctx):
        ran.set()
        return 7

    job = EngineJob(work, lambda _: None, "test")
    with TORCH_IMPORT_LOCK:
        thread = threading.Thread(target=job._run)
        thread.start()
        assert not ran.wait(0.5), "the engine call started while torch was being imported"
    thread.join(30)
    assert ran.is_set() and job._done.is_set()


def test_import_torch_returns_torch():
    torch = import_torch()
    assert torch.ones(2).sum().item() == 2.0


def test_no_widget_module_loads_torch():
    modules = ["finetune", "segment", "clusters", "evaluate", "pretrain", "demo_viewer"]
    code = "import sys; " + "; ".join(f"import napari_smp._widgets.{m}" for m in modules) + \
        "; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", errors="replace", check=True
    ).stdout
    assert out.strip() == "False"
