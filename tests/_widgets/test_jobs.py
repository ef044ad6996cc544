"""The job shell: a report the worker queued just before Cancel is not delivered after it."""

from __future__ import annotations

import threading

from napari_smp._widgets._jobs import EngineJob


def test_a_report_queued_before_cancel_is_dropped(qtbot):
    reported, held = threading.Event(), threading.Event()
    got: list[object] = []

    def work(ctx):
        ctx.report("step 1")  # queued for the main thread, which is not looking yet
        reported.set()
        held.wait(30)
        return None

    job = EngineJob(work, lambda _: None, "test")
    job.reported.connect(got.append)
    job.start()
    assert reported.wait(30)
    job.stop(timeout=0)  # the user pressed Cancel before the queued report was delivered
    held.set()
    qtbot.waitUntil(lambda: not job.running, timeout=30_000)
    qtbot.wait(100)  # deliver whatever was queued
    assert got == []


def test_reports_arrive_in_order_on_the_main_thread(qtbot):
    threads: list[int] = []
    got: list[object] = []

    def work(ctx):
        for i in range(5):
            ctx.report(i)
        return "done"

    job = EngineJob(work, lambda _: None, "test")
    job.reported.connect(lambda item: (got.append(item), threads.append(threading.get_ident())))
    job.start()
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=30_000)
    assert got == [0, 1, 2, 3, 4] and set(threads) == {threading.get_ident()}


def test_a_long_status_gets_the_lines_it_needs_in_a_narrow_dock(qtbot):
    from napari_smp._widgets._jobs import WrappingLabel

    label = WrappingLabel()
    qtbot.addWidget(label)
    label.show()
    label.resize(150, 20)
    qtbot.wait(50)
    line = label.fontMetrics().height()
    label.setText("'abdominal CT segmentation': spleen, liver, stomach, aorta, inferior_vena_cava, colon")
    narrow = label.minimumHeight()
    assert narrow >= 3 * line  # every line of the text, not the one line Qt sized it for
    label.resize(900, narrow)
    qtbot.wait(50)
    assert label.minimumHeight() < 2 * line < narrow  # wider: one line, a smaller minimum
