"""MACL's asymmetric multi-level objective on the lite network (research/pretraining.md §2.2-2.3).

Two branches share one encoder:

* **dominant**: the input shrunk by lambda = 1/4, the encoder, then the decoder's first stages (the
  deep stage and two up-stages, ``d2``), which land on the grid of the auxiliary bottleneck;
* **auxiliary**: the full-size input, the encoder only, bottleneck at 1/32.

``L = 1.0 * L_g + 0.5 * L_d + 1.0 * L_ER`` (the paper's weights):

* ``L_g``: SupCon between the dominant instance projection of down(V1) (from ``d2``) and the auxiliary
  one of V2 (from the bottleneck); positives by slice position.
* ``L_d``: at every cell of the shared grid, SupCon across the batch between ``d2`` of down(I1) and the
  projected auxiliary bottleneck of I2; positives are the same cell of slices at similar positions.
  Vectorised over cells (the official code loops).
* ``L_ER``: mean absolute difference between the dominant bottleneck of down(I1) and the auxiliary
  bottleneck of I2 shrunk by 1/4; no stop-gradient on either side, as in the code.

The lite encoder halves five times, so the 1/4-size branch needs ``img_size`` divisible by 128; at 128 the
shared grid is 4x4 and the dominant bottleneck 1x1, coarser than the papers' 32x32 at 512 (see docs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .contrastive import position_mask, supcon_loss
from .heads import InstanceHead, PixelProjector, PretrainBatch, encode
from .views import make_views

__all__ = ["MACLObjective", "MACL_WEIGHTS", "MACL_SCALE", "MACL_DECODER_STAGES", "macl_decoder_prefixes"]

MACL_WEIGHTS = {"g": 1.0, "d": 0.5, "er": 1.0}
MACL_SCALE = 0.25  # lambda: the dominant branch's input scale
MACL_DECODER_STAGES = 3  # decoder outputs d4, d3, d2 = the deep stage and two up-stages
INSTANCE_DIM = 128  # MACL's projection width (512 * 0.25)


def macl_decoder_prefixes() -> list[str]:
    """State-dict prefixes of the decoder parts MACL trains: stem, the first three DMW-LA/conv blocks,
    the first two up-convolutions and channel attentions, and the spatial attention they share."""
    n = MACL_DECODER_STAGES
    return (
        ["decoder.stem.", "decoder.sa."]
        + [f"decoder.memory.{j}." for j in range(n)]
        + [f"decoder.blocks.{j}." for j in range(n)]
        + [f"decoder.ups.{j}." for j in range(n - 1)]
        + [f"decoder.ca.{j}." for j in range(n - 1)]
    )


class MACLObjective(nn.Module):
    """The MACL loss and its projection heads.

    Args:
        channels: the encoder's stage widths, shallow to deep, e.g. (w, 2w, 4w, 8w).
        position_threshold: PCL threshold on relative slice positions (None: same slice only).
    """

    def __init__(self, channels: tuple[int, ...], position_threshold: float | None = 0.1) -> None:
        super().__init__()
        dec = channels[::-1][MACL_DECODER_STAGES - 1]  # width of d2
        self.dominant_head = InstanceHead(dec, INSTANCE_DIM, INSTANCE_DIM)
        self.auxiliary_head = InstanceHead(channels[-1], INSTANCE_DIM, INSTANCE_DIM)
        self.auxiliary_pixels = PixelProjector(channels[-1], dec)
        self.position_threshold = position_threshold

    def _dominant(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bottleneck, d2) of the 1/4-size branch for (B, C, S, S) input."""
        small = F.interpolate(x, scale_factor=MACL_SCALE, mode="bilinear", align_corners=False)
        feats = encode(model, small)
        return feats[-1], model.decoder(feats)[MACL_DECODER_STAGES - 1]

    def forward(
        self, model: nn.Module, batch: PretrainBatch, gen: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Compute every term for one batch.

        Returns:
            ``{"g", "d", "er", "total"}`` scalar tensors.
        """
        i1, i2, v1, v2 = make_views(batch.images, gen)
        n = batch.images.shape[0]
        y_dom, d2 = self._dominant(model, torch.cat([i1, v1]))
        aux = encode(model, torch.cat([i2, v2]))[-1]
        mask = position_mask(batch.positions, self.position_threshold)

        z_dom = self.dominant_head(d2[n:])
        z_aux = self.auxiliary_head(aux[n:])
        global_loss = supcon_loss(torch.cat([z_dom, z_aux]), mask)

        pix_dom = d2[:n].float()  # (B, D, g, g): Z_l = d(Y), no projector (paper Eq. 7)
        pix_aux = self.auxiliary_pixels(aux[:n]).float()
        if pix_dom.shape[-2:] != pix_aux.shape[-2:]:
            raise RuntimeError(
                f"MACL grids differ: dominant {tuple(pix_dom.shape)} vs auxiliary {tuple(pix_aux.shape)}"
            )
        cells = torch.cat([pix_dom, pix_aux]).flatten(2).permute(2, 0, 1)  # (g*g, 2B, D)
        dense_loss = supcon_loss(cells, mask)

        target = F.interpolate(aux[:n].float(), scale_factor=MACL_SCALE, mode="bilinear", align_corners=False)
        er = F.l1_loss(y_dom[:n].float(), target)
        total = MACL_WEIGHTS["g"] * global_loss + MACL_WEIGHTS["d"] * dense_loss + MACL_WEIGHTS["er"] * er
        return {"g": global_loss, "d": dense_loss, "er": er, "total": total}
