"""SuperCL's three losses on the lite encoder (research/pretraining.md §1.5, plan in §4.3).

``L = 1.0 * L_ins + 1.0 * L_intra + 0.5 * L_inter`` (the released scripts' weights):

* ``L_ins``: instance projections of the spatial views V1, V2; positives are slices whose relative
  positions differ by less than the threshold (PCL), from any volume of the batch.
* ``L_intra`` (ILCP): dense features of the aligned intensity views I1, I2 at sampled grid cells;
  positives are cells of the same superpixel, within and across the two views, image by image.
* ``L_inter`` (IGCP = ASP + CCL): the channel-mean map of each intensity view, averaged within
  superpixels, gives one vector per view; the connected components of their 1-NN graph are weak
  labels for a second SupCon on the V1, V2 instance projections.

Where the papers use the encoder bottleneck at 1/16 of the input, the dense features here are the
lite encoder's stage-3 output, which sits at 1/16 (the lite bottleneck, stage 4, is at 1/32 and feeds
the instance head).
"""

from __future__ import annotations

import torch
from torch import nn

from .contrastive import component_mask, label_mask, position_mask, sample_cells, supcon_loss
from .heads import InstanceHead, PretrainBatch, encode
from .superpixels import downsample_superpixels, superpixel_pool
from .views import make_views

__all__ = ["SuperCLObjective", "SUPERCL_WEIGHTS", "DENSE_STAGE"]

SUPERCL_WEIGHTS = {"ins": 1.0, "intra": 1.0, "inter": 0.5}
DENSE_STAGE = 2  # zero-based encoder stage at 1/16 of the input


class SuperCLObjective(nn.Module):
    """The SuperCL loss and its instance head.

    Args:
        channels: the encoder's stage widths, shallow to deep.
        position_threshold: PCL threshold on relative slice positions (None: same slice only).
        cells: grid cells per image that enter ``L_intra`` (the code keeps 64).
        area_weighted_asp: reproduce the code's ASP (sum / grid size) instead of the superpixel mean.
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        position_threshold: float | None = 0.1,
        cells: int = 64,
        area_weighted_asp: bool = False,
    ) -> None:
        super().__init__()
        self.head = InstanceHead(channels[-1], channels[-1])
        self.position_threshold = position_threshold
        self.cells = cells
        self.area_weighted_asp = area_weighted_asp

    def forward(
        self, model: nn.Module, batch: PretrainBatch, gen: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Compute every term for one batch.

        Returns:
            ``{"ins", "intra", "inter", "total"}`` scalar tensors (only ``total`` is back-propagated).
        """
        i1, i2, v1, v2 = make_views(batch.images, gen)
        n = batch.images.shape[0]
        # one encoder pass over all four views: batch norm sees them together, as one large batch would
        feats = encode(model, torch.cat([i1, i2, v1, v2]))
        dense = feats[DENSE_STAGE].float()
        f1, f2 = dense[:n], dense[n : 2 * n]
        proj = self.head(feats[-1][2 * n :])  # (2B, P): V1 rows then V2 rows

        ins = supcon_loss(proj, position_mask(batch.positions, self.position_threshold))
        grid = downsample_superpixels(batch.superpixels, f1.shape[-2:])
        intra = self._intra(f1, f2, grid, gen)
        asp = torch.cat(
            [
                superpixel_pool(f1.mean(dim=1), grid, self.area_weighted_asp),
                superpixel_pool(f2.mean(dim=1), grid, self.area_weighted_asp),
            ]
        )
        inter = supcon_loss(proj, component_mask(asp))
        total = (
            SUPERCL_WEIGHTS["ins"] * ins + SUPERCL_WEIGHTS["intra"] * intra + SUPERCL_WEIGHTS["inter"] * inter
        )
        return {"ins": ins, "intra": intra, "inter": inter, "total": total}

    def _intra(
        self, f1: torch.Tensor, f2: torch.Tensor, grid: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """ILCP: (B, C, h, w) features of both views and (B, h, w) superpixel ids -> SupCon per image."""
        b, c, h, w = f1.shape
        cells = sample_cells(h * w, self.cells, gen).to(f1.device)
        a = f1.flatten(2)[:, :, cells].transpose(1, 2)  # (B, M, C)
        bb = f2.flatten(2)[:, :, cells].transpose(1, 2)
        ids = grid.flatten(1)[:, cells]  # (B, M): I1 and I2 are aligned, so both views share the ids
        return supcon_loss(torch.cat([a, bb], dim=1), label_mask(torch.cat([ids, ids], dim=1)))
