"""The cluster read-out behind the Clusters widget: which prototype every feature cell of one DMW-LA
module is routed to, and how similar it is to each.

It runs the network in eval mode up to the chosen module (a forward pre-hook captures that module's
input and stops the pass) and changes no state: no bank write, no batch-norm statistic, the mode restored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from .net import SimMPNet

__all__ = ["ClusterReadout"]


class _Captured(Exception):
    """Raised by the hook to stop the forward pass once the wanted input has been seen."""


class ClusterReadout:
    """Cluster maps of a network's DMW-LA modules.

    Args:
        model: the network (its :meth:`~napari_smp.model.net.SimMPNet.memory_modules` name the modules).
    """

    def __init__(self, model: SimMPNet) -> None:
        self.model = model

    @torch.no_grad()
    def maps(self, x: torch.Tensor, module: str) -> dict[str, Any]:
        """Routing of every feature cell of one DMW-LA module.

        Args:
            x: images, shape (B, in_channels, S, S).
            module: a name from ``memory_modules()``, e.g. ``"encoder.stage3.1"``.

        Returns:
            ``"assignment"`` (B, h, w) int64 cluster index, ``"similarity"`` (B, k, h, w) cosine
            similarity to every prototype, ``"theta"`` (B, D, h, w) the query features the read
            routes, ``"phi"`` (B, D, h, w) the features the bank stores and its write routes (through
            the momentum copy of phi), ``"prototypes"`` (k, D),
            ``"stride"`` input pixels per feature cell (float), ``"warming_up"`` (prototypes are
            meaningless before the bank's initialisation).

        Raises:
            ValueError: the model has no memory bank, or no module of that name.
        """
        modules = dict(self.model.memory_modules())
        if not modules:
            raise ValueError(
                "this model was trained without its memory bank: it has no clusters to show; fine-tune one "
                "with it (Fine-tune's 'memory bank' box, or finetune --memory)"
            )
        if module not in modules:
            raise ValueError(f"no DMW-LA module named {module!r}; choose one of {', '.join(modules)}")
        target, seen = modules[module], {}

        def capture(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen["x"] = args[0]
            raise _Captured

        handle = target.register_forward_pre_hook(capture)
        try:
            with self._frozen():
                self.model(x)
        except _Captured:
            pass
        finally:
            handle.remove()
        sim = target.similarity(seen["x"])
        return {
            "assignment": sim.argmax(dim=1),
            "similarity": sim,
            "theta": target.theta(seen["x"]).float(),
            # the space the bank's slots and prototypes live in (W-LD writes route these by cosine)
            "phi": F.conv2d(seen["x"], target.phi_ema.to(seen["x"].dtype)).float(),
            "prototypes": target.prototypes.detach().float().clone(),
            "stride": x.shape[-1] / sim.shape[-1],
            "warming_up": target.warming_up,
        }

    @contextmanager
    def _frozen(self) -> Iterator[None]:
        """Eval mode without bank writes (even with ``faithful_eval_updates``); mode and flags restored."""
        model = self.model
        was_training = model.training
        updates = [(m, m.eval_updates) for _, m in model.memory_modules()]
        model.eval()
        for m, _ in updates:
            m.eval_updates = False
        try:
            yield
        finally:
            for m, flag in updates:
                m.eval_updates = flag
            model.train(was_training)
