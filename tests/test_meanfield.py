import numpy as np
import pytest
import torch

from utils.models import LowRankRNN
from utils.tasks import decision_batch
from utils.analysis.lowrank_stats import fit_gaussian, resample
from utils.analysis.meanfield import (PAPER_RANK1, fixed_points, kappa_velocity, mean_gain,
                                      rank1_statistics, simulate_rank1)


@pytest.mark.parametrize("delta", [0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0])
def test_quadrature_matches_monte_carlo(delta):
    rng = np.random.default_rng(0)
    z = rng.standard_normal(2_000_000)
    samples = 1.0 / np.cosh(delta * z) ** 2
    mc, stderr = samples.mean(), samples.std() / np.sqrt(z.size)
    assert abs(mean_gain(delta) - mc) < 4 * stderr + 1e-12


def test_quadrature_matches_scipy_quad_and_is_vectorised():
    deltas = np.concatenate([[0.0], np.logspace(-3, 3, 25)])
    fast = mean_gain(deltas)
    assert fast.shape == deltas.shape
    assert np.allclose(fast, mean_gain(deltas, method="quad"), atol=1e-7)
    assert mean_gain(0.0) == pytest.approx(1.0)
    assert isinstance(mean_gain(1.0), float)
    assert np.all(np.diff(fast) < 0)  # the gain falls as the population spreads
    # large Delta: a fraction ~ 2 / (Delta sqrt(2 pi)) of units stays in the linear range
    assert mean_gain(500.0) == pytest.approx(2.0 / (500.0 * np.sqrt(2 * np.pi)), rel=1e-3)
    with pytest.raises(ValueError, match="delta"):
        mean_gain(-1.0)
    with pytest.raises(TypeError, match="delta"):
        mean_gain("big")
    with pytest.raises(ValueError, match="method"):
        mean_gain(1.0, method="simpson")


def test_rank1_statistics_from_network_and_matrix():
    net = LowRankRNN(64, 1, seed=0)
    stats = rank1_statistics(net, moments="centred")
    cov = fit_gaussian(net)[1].numpy()
    assert stats["sigma_mn"] == pytest.approx(cov[0, 1]) and stats["sigma_nI"] == pytest.approx(cov[1, 2])
    assert stats["sigma_mw"] == pytest.approx(cov[0, 3]) and stats["sigma_w"] == pytest.approx(np.sqrt(cov[3, 3]))
    assert rank1_statistics(cov) == stats
    with pytest.raises(ValueError, match="rank-one"):
        rank1_statistics(LowRankRNN(10, rank=2))
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        rank1_statistics(np.eye(3))


def test_linear_circuit_is_plain_euler():
    stats = dict(PAPER_RANK1, sigma_mn=0.5)
    u = np.zeros(30)
    u[2:10] = 1.0
    sim = simulate_rank1(u, stats, gain=lambda d: np.ones_like(d))
    k, v = 0.0, 0.0
    for t in range(30):
        k, v = k + 0.2 * (-k + 0.5 * k + 2.6 * v), v + 0.2 * (u[t] - v)
        assert sim["kappa"][t, 0] == pytest.approx(k) and sim["v"][t, 0] == pytest.approx(v)
    assert sim["z"][t, 0] == pytest.approx(2.1 * k)


def test_reduced_circuit_matches_a_large_resampled_network():
    # a network drawn from the paper's statistics, N large: its latent follows the mean field
    net = LowRankRNN(8, 1, seed=0)
    mean = torch.zeros(4, dtype=torch.float64)
    # n = 1.4 m + 2.6 I + noise, w = 2.1 m + noise: the paper's covariances, positive definite
    cov = torch.tensor([[1.0, 1.4, 0.0, 2.1], [1.4, 9.72, 2.6, 2.94],
                        [0.0, 2.6, 1.0, 0.0], [2.1, 2.94, 0.0, 13.41]], dtype=torch.float64)
    big = resample(net, n_units=20000, seed=1, mean=mean, cov=cov)
    batch = decision_batch(6, noise_std=0.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sim_net = big.simulate(batch["inputs"])
    sim_mf = simulate_rank1(batch["inputs"], rank1_statistics(cov.numpy()))
    assert np.allclose(sim_net["K"][..., 0].numpy(), sim_mf["kappa"], atol=0.05)
    assert np.allclose(sim_net["z"].numpy(), sim_mf["z"], atol=0.1)


def test_fixed_points_bistable_monostable_and_line_attractor():
    pts = fixed_points(lambda k: kappa_velocity(k, 0.0, PAPER_RANK1))
    assert [p["stability"] for p in pts] == ["stable", "unstable", "stable"]
    assert pts[0]["kappa"] == pytest.approx(-pts[2]["kappa"], abs=1e-6) and abs(pts[1]["kappa"]) < 1e-6
    assert kappa_velocity(pts[2]["kappa"], 0.0, PAPER_RANK1) == pytest.approx(0.0, abs=1e-6)
    weak = fixed_points(lambda k: kappa_velocity(k, 0.0, dict(PAPER_RANK1, sigma_mn=0.8)))
    assert len(weak) == 1 and weak[0]["stability"] == "stable"
    line = fixed_points(lambda k: 0.0 * k, n_starts=9)
    assert len(line) == 9 and all(p["stability"] == "marginal" for p in line)
    with pytest.raises(ValueError, match="kappa_range"):
        fixed_points(lambda k: k, kappa_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="sigma_mn"):
        kappa_velocity(0.0, 0.0, {"sigma_m": 1.0, "sigma_I": 1.0, "sigma_mI": 0.0})
    with pytest.raises(ValueError, match="sigma_mI"):
        kappa_velocity(0.0, 0.0, {"sigma_m": 1.0, "sigma_I": 1.0, "sigma_mn": 1.0, "sigma_nI": 1.0})
    with pytest.raises(ValueError, match="u must"):
        simulate_rank1(np.zeros((2, 3, 4)), PAPER_RANK1)


def test_delta_with_raw_input_differs_only_transiently():
    u = np.zeros(75)
    u[5:46] = 0.256
    sim_v = simulate_rank1(u, PAPER_RANK1)
    sim_u = simulate_rank1(u, PAPER_RANK1, delta_input="u")
    assert not np.allclose(sim_v["kappa"], sim_u["kappa"])
    assert np.sign(sim_v["z"][-1, 0]) == np.sign(sim_u["z"][-1, 0]) == 1
    assert abs(sim_v["kappa"][-1, 0] - sim_u["kappa"][-1, 0]) < 0.05  # same fixed point at the end
    with pytest.raises(ValueError, match="delta_input"):
        simulate_rank1(u, PAPER_RANK1, delta_input="x")
