"""DMW-LA: Dynamic Memory Weights-Loss Attention over a prototype memory bank (research/paper.md §2).

Every module owns a bank of k clusters x M slots x D features. Its life has two phases:

1. **Warm-up** (``step < warmup_steps``, steps = optimiser steps counted by :meth:`DMWLA.step_memory`):
   the module is plain non-local attention, and every training forward writes randomly sampled
   ``phi`` features into the pool. When the step counter reaches ``warmup_steps`` the pool is
   clustered once by k-means and reordered so that block c holds members of cluster c.
   With ``seed_from_labels`` and the batch's labels given (:attr:`DMWLA.targets`), block c is filled
   instead with features of cells that hold class c, and its prototype is their mean: cluster c
   starts as class c, with no k-means (a lite choice; the official bank starts from random features).
2. **Main phase**: every pixel's ``theta`` is routed (hard, cosine) to its nearest prototype and reads
   the M slots of that cluster (memory attention) as well as every pixel of its image (context
   attention); the two reads are summed and projected back with a residual. Every training forward
   then applies the W-LD write (:func:`~napari_smp.model.wld.wld_write`) with the current K and
   recomputes the prototypes as slot means.

The bank is state, not a parameter: it is never touched by gradient, lives in registered buffers
(saved in ``state_dict``, moved by ``.to()``), and is frozen in ``eval()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .attention import context_attention, memory_attention
from .blocks import nchw
from .cluster_loss import cell_shares, cluster_loss
from .kmeans import kmeans
from .wld import wld_write

__all__ = ["DMWLA", "showing_labels"]


class DMWLA(nn.Module):
    """One DMW-LA module with its own prototype memory bank.

    Args:
        channels: input and output channels C.
        dim: feature width D of theta, phi, g and the bank.
        clusters: k, number of prototypes.
        slots: M, memory slots per cluster.
        warmup_steps: optimiser steps of pool filling before the k-means initialisation (>= 1).
        write_momentum: W-LD write momentum (official 0.3).
        phi_momentum: momentum of the copy of phi that routes the W-LD write (official 0.95).
        k_init: initial update range K (None -> M // 2).
        kmeans_iters: Lloyd iterations of the one-off k-means.
        seed: seed of the bank's own randomness (initial pool, warm-up sampling, k-means).
        fused_attn: use ``F.scaled_dot_product_attention`` for the context read.
        eval_updates: also write the bank in ``eval()`` (the official behaviour; off by default).
        seed_from_labels: during warm-up, fill block c from cells labelled c whenever
            :attr:`targets` holds the batch's labels (needs ``clusters`` = number of classes).
        tied_writes: with ``seed_from_labels``, keep reading the labels after the warm-up and write each
            cell that is mostly one class into that class's block (W-LD as usual inside the block);
            cells without a majority class are not written. Cluster c then stays class c as phi
            trains, instead of drifting with whichever block the nearest-prototype routing feeds.
        prototype_loss: with ``seed_from_labels``, weight of the cluster loss after the warm-up
            (:meth:`cluster_loss`; 0: none). It makes the prototype nearest a cell its class's, in the
            space the read routes (theta) and the one the bank stores (phi).
        prototype_temperature: cosine similarities are divided by this before the softmax.
    """

    def __init__(
        self,
        channels: int,
        dim: int,
        clusters: int,
        slots: int = 100,
        warmup_steps: int = 2000,
        write_momentum: float = 0.3,
        phi_momentum: float = 0.95,
        k_init: int | None = None,
        kmeans_iters: int = 50,
        seed: int = 0,
        fused_attn: bool = True,
        eval_updates: bool = False,
        seed_from_labels: bool = False,
        tied_writes: bool = False,
        prototype_loss: float = 0.0,
        prototype_temperature: float = 0.1,
    ) -> None:
        super().__init__()
        if warmup_steps < 1:
            raise ValueError(
                f"warmup_steps must be at least 1 (the bank is filled during it), got {warmup_steps}"
            )
        self.clusters, self.slots, self.dim = clusters, slots, dim
        self.warmup_steps = warmup_steps
        self.write_momentum, self.phi_momentum = write_momentum, phi_momentum
        self.kmeans_iters, self.seed = kmeans_iters, seed
        self.fused_attn, self.eval_updates = fused_attn, eval_updates
        self.seed_from_labels = seed_from_labels
        self.tied_writes = tied_writes and seed_from_labels
        self.prototype_loss = float(prototype_loss) if seed_from_labels else 0.0
        self.prototype_temperature = float(prototype_temperature)
        # the weighted cluster loss of the last training forward, taken (and cleared) by the trainer
        self.aux_loss: torch.Tensor | None = None
        # (B, S, S) labels of the batch being trained on, set around a forward by showing_labels
        self.targets: torch.Tensor | None = None
        self.theta = nn.Conv2d(channels, dim, 1, bias=False)
        self.phi = nn.Conv2d(channels, dim, 1, bias=False)
        self.g = nn.Conv2d(channels, dim, 1, bias=False)
        self.o = nn.Conv2d(dim, channels, 1, bias=False)
        init = torch.Generator().manual_seed(seed)
        self.register_buffer("pool", torch.rand(clusters, slots, dim, generator=init))
        self.register_buffer("prototypes", torch.zeros(clusters, dim))
        self.register_buffer("filled", torch.zeros(clusters * slots, dtype=torch.bool))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("writes", torch.zeros((), dtype=torch.long))
        # warm-up forwards that saw labels; not saved, so checkpoints written before it still load
        self.register_buffer("labelled_writes", torch.zeros((), dtype=torch.long), persistent=False)
        self.register_buffer("k_update", torch.tensor(slots // 2 if k_init is None else k_init))
        # momentum copy of phi as a buffer: saved with the model, moved by .to(), never optimised
        self.register_buffer("phi_ema", self.phi.weight.detach().clone())

    @property
    def warming_up(self) -> bool:
        """True until the step counter reaches ``warmup_steps``."""
        return int(self.step) < self.warmup_steps

    @property
    def reads_labels(self) -> bool:
        """True while a class-seeded bank warms up, or for good with ``tied_writes``: only then does a
        forward read :attr:`targets`."""
        return self.seed_from_labels and (self.warming_up or self.tied_writes or self.prototype_loss > 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply DMW-LA, and in training write the bank.

        Args:
            x: features, shape (B, C, H, W).

        Returns:
            ``x + o(memory read + context read)``, shape (B, C, H, W).
        """
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, D)
        phi = self.phi(x).flatten(2).transpose(1, 2)
        g = self.g(x).flatten(2).transpose(1, 2)
        read = context_attention(theta, phi, g, fused=self.fused_attn)
        warming_up = self.warming_up
        if not warming_up:
            q = theta.reshape(b * h * w, self.dim)
            # a copy, because the W-LD write below changes the pool in place before backward runs
            bank = self.pool.detach().clone()
            read = read + memory_attention(q, bank, self.route(q)).view(b, h * w, self.dim)
        # a channels-last view here would set the layout of the convs after it (model/blocks.py, nchw)
        out = x + self.o(nchw(read.transpose(1, 2).reshape(b, self.dim, h, w)))
        if self.training and not warming_up and self.prototype_loss > 0 and self.targets is not None:
            share = cell_shares(self.targets, self.clusters, (h, w)).to(x.device)
            self.aux_loss = self.prototype_loss * (self.cluster_loss(theta, share) + self.cluster_loss(phi, share))
        if self.training or self.eval_updates:
            self._write(x, phi, warming_up, (h, w))
        return out

    def cluster_loss(self, feats: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
        """This bank's cluster loss (:func:`~napari_smp.model.cluster_loss.cluster_loss`).

        Args:
            feats: (B, h * w, D) cell features, with gradient.
            share: (B * h * w, k) share of each cell's pixels in each class.
        """
        return cluster_loss(feats.reshape(-1, self.dim), self.prototypes, share, self.prototype_temperature)

    @torch.no_grad()
    def route(self, feats: torch.Tensor) -> torch.Tensor:
        """Hard routing to the prototype of highest cosine similarity.

        Args:
            feats: features, shape (N, D).

        Returns:
            Cluster indices, shape (N,), int64.
        """
        return self.cosine(feats).argmax(dim=1)

    @torch.no_grad()
    def cosine(self, feats: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of features to every prototype, shape (N, k), from features (N, D)."""
        return F.normalize(feats.float(), dim=1) @ F.normalize(self.prototypes.float(), dim=1).T

    @torch.no_grad()
    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of every pixel's theta to every prototype.

        Args:
            x: module input, shape (B, C, h, w).

        Returns:
            Similarities, shape (B, k, h, w).
        """
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2).reshape(b * h * w, self.dim)
        return self.cosine(theta).view(b, h, w, self.clusters).permute(0, 3, 1, 2)

    @torch.no_grad()
    def set_k(self, k: int) -> None:
        """Set the W-LD update range K (slots replaced per cluster and write)."""
        if not 1 <= k <= self.slots:
            raise ValueError(f"K must lie in [1, {self.slots}], got {k}")
        self.k_update.fill_(k)

    @torch.no_grad()
    def step_memory(self) -> None:
        """Advance one optimiser step: count it, run k-means when warm-up ends, move the phi copy."""
        self.step += 1
        if int(self.step) == self.warmup_steps and self.seed_from_labels and int(self.labelled_writes) > 0:
            self._init_from_classes()
        elif int(self.step) == self.warmup_steps:
            self._init_from_kmeans()
        self.phi_ema.mul_(self.phi_momentum).add_(self.phi.weight.detach(), alpha=1.0 - self.phi_momentum)

    def _generator(self) -> torch.Generator:
        # seeded from the write count, so sampling is reproducible and survives a checkpoint resume
        return torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.writes))

    @torch.no_grad()
    def _write(self, x: torch.Tensor, phi: torch.Tensor, warming_up: bool, grid: tuple[int, int]) -> None:
        if warming_up and self.seed_from_labels and self.targets is not None:
            self._fill_by_class(phi.detach(), self.targets, grid)
        elif warming_up:
            self._fill(phi.detach())
        else:
            psi = F.conv2d(x.detach(), self.phi_ema.to(x.dtype)).flatten(2).transpose(1, 2)
            psi = psi.reshape(-1, self.dim).float()
            if self.tied_writes and self.targets is not None:
                psi, assign = self._by_class(psi, self.targets, grid)
            else:  # cosine routing, like the attention read (the official write routes by dot product)
                assign = self.route(psi)
            wld_write(self.pool, psi, assign, int(self.k_update), self.write_momentum)
            self.prototypes.copy_(self.pool.mean(dim=1))
        self.writes += 1

    @torch.no_grad()
    def _by_class(self, feats: torch.Tensor, targets: torch.Tensor,
                  grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The cells that are mostly one class (share >= 1/2), with that class as their cluster.

        Args:
            feats: (B * h * w, D) features of the cells.
            targets: (B, S, S) labels of the batch at the input size.
            grid: (h, w) of the feature map.

        Returns:
            ``(feats[keep], class[keep])``.
        """
        share = cell_shares(targets, self.clusters, grid).to(feats.device)
        best, cls = share.max(dim=1)
        keep = best >= 0.5
        return feats[keep], cls[keep]

    @torch.no_grad()
    def _fill(self, phi: torch.Tensor) -> None:
        """Warm-up sampling of the official code, vectorised, writing unfilled slots first.

        Args:
            phi: phi features of the batch, shape (B, HW, D).
        """
        b, hw, _ = phi.shape
        total = self.clusters * self.slots
        gen = self._generator()
        per_image = max(total // b, 1)
        pos = torch.randint(hw, (b, per_image), generator=gen).to(phi.device)
        feats = phi.gather(1, pos[:, :, None].expand(-1, -1, self.dim)).reshape(b * per_image, self.dim)
        share = (int(self.step) + 1) / self.warmup_steps * 0.5  # official: grows to 1/2 of the batch
        count = min(max(1, int(share * b * per_image)), total)
        cols = torch.randint(b * per_image, (count,), generator=gen).to(phi.device)
        # a random order in which never-written slots come first, so a short warm-up still covers the pool
        key = torch.rand(total, generator=gen).to(phi.device) + self.filled.float()
        slots = key.argsort()[:count]
        self.pool.view(total, self.dim)[slots] = feats[cols].to(self.pool.dtype)
        self.filled[slots] = True

    @torch.no_grad()
    def _fill_by_class(self, phi: torch.Tensor, targets: torch.Tensor, grid: tuple[int, int]) -> None:
        """Warm-up writes by class: block c takes phi features of cells that hold class c.

        A cell is picked for class c with probability proportional to the share of its pixels labelled
        c, so the background block takes mostly pure background and a small organ, which fills no
        cell at 1/16, still gets the cells that hold it. Never-written slots of a block come first.

        Args:
            phi: phi features of the batch, shape (B, h * w, D).
            targets: labels of the batch at the input size, shape (B, S, S), values in [0, clusters).
            grid: (h, w) of the feature map.
        """
        b, hw, _ = phi.shape
        k, m = self.clusters, self.slots
        share = cell_shares(targets, self.clusters, grid)
        feats = phi.reshape(b * hw, self.dim)
        # enough per step to fill a block in half the warm-up, then fresher features replace older ones
        per_step = max(1, -(-2 * m // self.warmup_steps))
        gen = self._generator()
        filled = self.filled.view(k, m)
        for c in range(k):  # k small draws per step, during warm-up only
            weight = share[:, c].float().cpu()
            if float(weight.sum()) <= 0:
                continue
            n = min(per_step, int((weight > 0).sum()))
            rows = torch.multinomial(weight, n, replacement=False, generator=gen).to(phi.device)
            key = torch.rand(m, generator=gen).to(phi.device) + filled[c].float()
            slots = key.argsort()[:n]
            self.pool[c, slots] = feats[rows].to(self.pool.dtype)
            filled[c, slots] = True
        self.labelled_writes += 1

    @torch.no_grad()
    def _init_from_classes(self) -> None:
        """End of a class-seeded warm-up: every block keeps its own features, prototype = their mean.

        A class absent from every labelled batch gets a copy of the background block, so its prototype
        ties with background's and routing (argmax, first index wins) never picks it.
        """
        filled = self.filled.view(self.clusters, self.slots)
        gen = self._generator()
        blocks = []
        for c in range(self.clusters):
            if bool(filled[c].any()):
                blocks.append(self._block(self.pool[c][filled[c]], gen))
            else:  # never painted: background's block (or, for background itself, the initial pool)
                blocks.append(blocks[0] if blocks else self.pool[c].clone())
        self.pool.copy_(torch.stack(blocks))
        self.prototypes.copy_(F.normalize(self.pool.mean(dim=1), dim=1))
        self.filled.fill_(True)

    @torch.no_grad()
    def _init_from_kmeans(self) -> None:
        """Cluster the filled pool once and rebuild it block by block (official ``structure_memory_bank``)."""
        flat = self.pool.view(-1, self.dim)
        points = flat[self.filled] if bool(self.filled.any()) else flat.clone()
        centroids, labels = kmeans(points, self.clusters, self.kmeans_iters, self.seed)
        gen = self._generator()
        blocks = []
        for c in range(self.clusters):  # once per bank, k iterations: harmless
            members = points[labels == c]
            if members.shape[0] == 0:  # fewer distinct points than clusters
                members = centroids[c : c + 1]
            blocks.append(self._block(members, gen))
        self.pool.copy_(torch.stack(blocks))
        self.prototypes.copy_(F.normalize(centroids, dim=1))
        self.filled.fill_(True)

    def _block(self, members: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """M slots (M, D) from a cluster's members (n, D): the first M, or all plus seeded random repeats."""
        if members.shape[0] < self.slots:
            extra = torch.randint(members.shape[0], (self.slots - members.shape[0],), generator=gen)
            members = torch.cat([members, members[extra.to(members.device)]])
        return members[: self.slots]

    def extra_repr(self) -> str:
        return (
            f"clusters={self.clusters}, slots={self.slots}, dim={self.dim}, "
            f"warmup_steps={self.warmup_steps}, write_momentum={self.write_momentum}, "
            f"seed_from_labels={self.seed_from_labels}"
        )


@contextmanager
def showing_labels(modules: Iterable[DMWLA], labels: torch.Tensor) -> Iterator[None]:
    """Show DMW-LA modules the labels of the batch given to the forward passes inside the block.

    Only a class-seeded warm-up reads them (``seed_from_labels``); the labels are dropped on leaving.

    Args:
        modules: the modules to show them to.
        labels: (B, S, S) long labels of the batch.
    """
    modules = list(modules)
    for m in modules:
        m.targets = labels
    try:
        yield
    finally:
        for m in modules:
            m.targets = None
