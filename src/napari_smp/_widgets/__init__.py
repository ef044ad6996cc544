"""napari dock widgets: Fine-tune, Segment, Correct, Clusters, Metrics, Pre-train and View (the only package
importing Qt).

The classes are imported lazily so that ``import napari_smp._widgets`` stays cheap and napari's
plugin discovery does not pull in matplotlib or torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__ = ["FinetuneWidget", "SegmentWidget", "CorrectWidget", "ClustersWidget", "MetricsWidget", "PretrainWidget",
           "ViewControls"]

_WHERE = {"FinetuneWidget": "finetune", "SegmentWidget": "segment", "CorrectWidget": "correct",
          "ClustersWidget": "clusters",
          "MetricsWidget": "evaluate", "PretrainWidget": "pretrain", "ViewControls": "_controls"}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
