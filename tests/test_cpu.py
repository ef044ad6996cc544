"""Cores other processes hold (``_cpu.OtherLoad``) and the thread count that follows them."""

from __future__ import annotations

import pytest

from napari_smp import _cpu
from napari_smp.engine import device


def test_other_load_is_the_machine_busy_time_less_our_own(monkeypatch):
    readings = iter([(0.0, 100.0, 10.0), (2.0, 103.0, 11.0), (2.0, 104.0, 11.0), (3.0, 104.5, 11.5)])
    monkeypatch.setattr(_cpu, "_snapshot", lambda: next(readings))
    load = _cpu.OtherLoad()
    assert load.cores() == pytest.approx(1.0)  # 3 busy CPU-seconds in 2 s, 1 of them ours
    assert load.cores() is None  # no wall time passed: unknown, not infinite
    assert load.cores() == pytest.approx(0.0)  # all the busy time was ours


def test_other_load_reads_this_machine():
    value = _cpu.OtherLoad().cores()
    assert value is None or value >= 0.0


@pytest.mark.parametrize("others, expected", [(0.0, 2), (0.2, 2), (0.5, 1), (1.0, 1), (3.0, 1)])
def test_the_governor_gives_a_busy_core_back(monkeypatch, others, expected):
    monkeypatch.delenv("NAPARI_SMP_THREADS", raising=False)
    monkeypatch.setattr(device, "cpu_cores", lambda: 2)
    set_to = []
    monkeypatch.setattr(device, "configure_threads", lambda n=None: set_to.append(n) or (n or 2))
    governor = device.ThreadGovernor(every=0.0)
    monkeypatch.setattr(governor._load, "cores", lambda: others)
    assert governor.tick() == expected and set_to[-1] == expected


def test_a_fixed_count_is_kept(monkeypatch):
    monkeypatch.setattr(device, "configure_threads", lambda n=None: n)
    governor = device.ThreadGovernor(threads=2, every=0.0)
    monkeypatch.setattr(governor._load, "cores", lambda: 5.0)
    assert governor.tick() == 2
    monkeypatch.setenv("NAPARI_SMP_THREADS", "1")
    assert device.ThreadGovernor(every=0.0).tick() == 1
