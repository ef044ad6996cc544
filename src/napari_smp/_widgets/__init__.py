"""napari dock widgets: Fine-tune, Segment, Clusters, Metrics, Pre-train and View (the only package importing Qt).

The classes are imported lazily so that ``import napari_smp._widgets`` stays cheap and napari's
plugin discovery does not pull in matplotlib or torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FinetuneWidget", "SegmentWidget", "ClustersWidget", "MetricsWidget", "PretrainWidget", "ViewControls"]

_WHERE = {"FinetuneWidget": "finetune", "SegmentWidget": "segment", "ClustersWidget": "clusters",
          "MetricsWidget": "evaluate", "PretrainWidget": "pretrain", "ViewControls": "_controls"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
