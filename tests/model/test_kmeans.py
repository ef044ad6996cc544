"""Our seeded torch k-means against scikit-learn and against its own invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_smp.model.kmeans import kmeans


def _blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])
    truth = torch.arange(4).repeat_interleave(25)
    return centres[truth] + 0.5 * torch.randn(100, 3, generator=g), truth


def test_recovers_separated_blobs_like_sklearn() -> None:
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    x, truth = _blobs()
    _, labels = kmeans(x, 4, iters=50, seed=3)
    ref = sklearn_cluster.KMeans(n_clusters=4, n_init=10, random_state=0).fit(x.numpy()).labels_
    # same partition up to a relabelling: the contingency table is a permutation matrix
    table = np.zeros((4, 4), dtype=int)
    np.add.at(table, (labels.numpy(), ref), 1)
    assert sorted(table.max(axis=1).tolist()) == [25, 25, 25, 25]
    assert ((labels[:, None] == labels[None, :]) == (truth[:, None] == truth[None, :])).all()


def test_centroids_are_member_means_and_labels_nearest() -> None:
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(1))
    centroids, labels = kmeans(x, 6, iters=100, seed=0)
    assert torch.equal(torch.cdist(x, centroids).argmin(1), labels)
    for c in range(6):
        members = x[labels == c]
        assert members.shape[0] > 0
        # converged Lloyd: every centroid is the mean of its members
        torch.testing.assert_close(centroids[c], members.mean(0), atol=1e-4, rtol=0)


def test_deterministic_for_a_seed_and_seed_matters() -> None:
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(2))
    a, la = kmeans(x, 5, iters=3, seed=7)
    b, lb = kmeans(x, 5, iters=3, seed=7)
    assert torch.equal(a, b) and torch.equal(la, lb)
    c, _ = kmeans(x, 5, iters=0, seed=8)
    d, _ = kmeans(x, 5, iters=0, seed=7)
    assert not torch.equal(c, d)


def test_fewer_distinct_points_than_clusters() -> None:
    x = torch.tensor([[1.0, 0.0]] * 5 + [[0.0, 1.0]] * 5)
    centroids, labels = kmeans(x, 4, iters=10, seed=0)
    assert centroids.shape == (4, 2) and labels.shape == (10,)
    assert torch.equal(centroids[labels], x)


def test_rejects_empty_input() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        kmeans(torch.zeros(0, 3), 2)
