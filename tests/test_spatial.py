"""Unit tests of utils.spatial: positions, distances, communicability, wiring and graph stats."""

import numpy as np
import pytest
import torch

from utils.constraints import spatial as S


def test_grid_positions_and_distances():
    p = S.grid_positions((2, 3))
    assert p.shape == (6, 2)
    assert torch.equal(p[1], torch.tensor([0.0, 1.0]))  # last axis fastest
    cube = S.grid_positions((2, 2, 2), spacing=0.5)
    d = S.distance_matrix(cube)
    assert d.shape == (8, 8)
    assert torch.allclose(d, d.T) and torch.all(torch.diagonal(d) == 0)
    assert d.max().item() == pytest.approx(0.5 * np.sqrt(3))


@pytest.mark.parametrize("bad, err", [((4,), ValueError), ((2, 2, 2, 2), ValueError),
                                      ((2, 0), ValueError), ("ab", TypeError), ((2, 2.5), TypeError)])
def test_grid_positions_rejects_bad_shapes(bad, err):
    with pytest.raises(err, match="shape"):
        S.grid_positions(bad)


def test_communicability_matches_series():
    w = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 2.0, 0.0]])
    c = S.communicability(w)
    s = w.sum(1)
    a = w / torch.sqrt(s[:, None] * s[None, :])
    import math
    series = sum(torch.linalg.matrix_power(a, k) / math.factorial(k) for k in range(20))
    assert torch.allclose(c, series, atol=1e-5)
    z = S.communicability(torch.zeros(3, 3))
    assert torch.allclose(z, torch.eye(3))


def test_connection_length_statistics():
    d = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    w = torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert S.mean_connection_length(w, d) == pytest.approx((2 + 3 + 2) / 4)
    assert S.short_weight_share(w, d, 1.0) == pytest.approx(0.5)
    lengths, means, counts = S.weight_by_distance(w, d)
    assert list(lengths) == [1.0, 2.0, 3.0]
    assert list(counts) == [2, 2, 2]
    assert means[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="zero"):
        S.mean_connection_length(torch.zeros(3, 3), d)
    with pytest.raises(ValueError, match="shape"):
        S.mean_connection_length(w, torch.ones(2, 2))


def test_modularity_finds_planted_modules():
    rng = np.random.default_rng(0)
    n = 24
    w = rng.uniform(0, 0.05, (n, n))
    for k in range(3):
        sl = slice(8 * k, 8 * (k + 1))
        w[sl, sl] += 1.0
    q, labels = S.modularity(torch.tensor(w))
    assert q > 0.5
    assert len(set(labels.tolist())) == 3
    for k in range(3):
        assert len(set(labels[8 * k: 8 * (k + 1)].tolist())) == 1
    q_rand, _ = S.modularity(torch.tensor(rng.uniform(0, 1, (n, n))))
    assert q_rand < 0.15
    with pytest.raises(ValueError, match="zero"):
        S.modularity(torch.zeros(4, 4))


def test_clustering_coefficient():
    full = torch.ones(5, 5)
    assert S.clustering_coefficient(full) == pytest.approx(1.0)
    ring = torch.zeros(6, 6)
    for i in range(6):
        ring[i, (i + 1) % 6] = 1.0
    assert S.clustering_coefficient(ring) == pytest.approx(0.0)


def test_plots_run():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    p = S.grid_positions((3, 3, 3))
    d = S.distance_matrix(p)
    w = torch.rand(27, 27)
    S.plot_grid_network(w, p, labels=np.arange(27) % 3)
    S.plot_grid_network(w[:9, :9], S.grid_positions((3, 3)))
    S.plot_weight_vs_distance({"a": w, "b": w / (1 + d)}, d)
    with pytest.raises(ValueError, match="positions"):
        S.plot_grid_network(w, p[:5])
    plt.close("all")


def test_clustering_at_fixed_density():
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 1, (40, 40))
    c = S.clustering_coefficient(torch.tensor(w), density=0.2)
    assert 0.1 < c < 0.3  # a random graph: about the density
    # a grid with weights falling with distance: its strongest edges form triangles
    p = S.grid_positions((4, 4, 4))
    local = torch.exp(-2.0 * S.distance_matrix(p))
    assert S.clustering_coefficient(local, density=0.1) > 0.15
    with pytest.raises(ValueError, match="density"):
        S.clustering_coefficient(torch.tensor(w), density=0.0)


def test_graph_statistics_refuse_non_finite_weights():
    w = torch.rand(6, 6, generator=torch.Generator().manual_seed(0))
    assert S.clustering_coefficient(w) > 0
    w[2, 3] = float("nan")  # was 0.0 (every comparison with NaN is False)
    for fn in (S.clustering_coefficient, S.symmetric_strength):
        with pytest.raises(ValueError, match="weights must be finite"):
            fn(w)
