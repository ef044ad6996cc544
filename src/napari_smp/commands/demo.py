"""``napari-smp demo``: the built-in example, optionally opened in napari."""

from __future__ import annotations

import argparse

__all__ = ["run_demo"]


def run_demo(args: argparse.Namespace) -> int:
    from ..engine.demo import run_demo as demo

    steps = {} if args.steps is None else {"steps": args.steps}  # run_demo holds the default
    result = demo(args.out, **steps, time_budget=args.time_budget, device=args.device)
    if args.gui:
        # the viewer is napari's: reached through the plugin's manifest, like every widget
        from npe2 import PluginManager

        manager = PluginManager.instance()
        manager.discover()
        manager.commands.execute("napari-smp.open_demo", kwargs={"out": str(result.out)})
    return 0
