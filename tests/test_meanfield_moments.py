"""Chapters 10-11, second edition: circuits from raw second moments, one definition of Delta,
reference values labelled by their source."""
import numpy as np
import pytest

from utils.analysis.effective_circuit import (PROJECT_WM_SIGMAS, RELEASED_WM_SIGMAS,
                                              EffectiveCircuit, simulate_circuit)
from utils.analysis.lowrank_stats import connectivity_matrix
from utils.analysis.meanfield import (PROJECT_RANK1, RELEASED_RANK1, kappa_velocity,
                                      population_spread, rank1_statistics, simulate_rank1)


def test_population_spread_is_the_rms_of_the_state(shifted_net):
    net = shifted_net(rank=2)
    C = connectivity_matrix(net).double().numpy()
    raw = C.T @ C / net.n_units
    kappa, v = np.array([0.7, -1.3]), 0.4
    x = C[:, :2] @ kappa + v * C[:, 4]
    got = population_spread(kappa, v, raw[:2, :2], raw[:2, 4], raw[4, 4])
    assert got == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-10)
    # the rank-one form (numbers, not matrices) and broadcasting over trials
    k1 = np.array([0.0, 1.0, -2.0])
    assert np.allclose(population_spread(k1, 0.5, 2.0, -0.3, 1.5),
                       np.sqrt(2.0 * k1 ** 2 - 0.3 * k1 + 1.5 * 0.25))
    with pytest.raises(ValueError, match="kappa"):
        population_spread(np.zeros(3), 0.0, np.eye(2), np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="sigma_mI"):
        population_spread(0.0, 0.0, 1.0, np.zeros(2), 1.0)


def test_meanfield_and_effective_circuit_share_delta_and_the_cross_term(shifted_net):
    net = shifted_net()
    stats = rank1_statistics(net, moments="raw")
    circuit = EffectiveCircuit.from_model(net, moments="raw")
    kappa, v = np.linspace(-2, 2, 9), 0.3
    vel_mf = kappa_velocity(kappa, v, stats)
    vel_ec = circuit.velocity(kappa[:, None], np.full(9, v))[:, 0]
    assert np.allclose(vel_mf, vel_ec, atol=1e-12)
    # the cross term 2 sigma_mI kappa v is in Delta: dropping it changes the flow
    no_cross = dict(stats, sigma_mI=0.0)
    assert stats["sigma_mI"] != 0 and not np.allclose(kappa_velocity(kappa, v, no_cross), vel_mf)
    u = np.zeros(40)
    u[5:20] = 0.3
    a, b = simulate_rank1(u, stats), simulate_circuit(circuit, u)
    assert np.allclose(a["kappa"], b.kappa[..., 0]) and np.allclose(a["z"], b.z)


def test_raw_moments_describe_a_network_with_non_zero_means(shifted_net):
    net = shifted_net(n_units=4000, seed=1)
    C = connectivity_matrix(net).double().numpy()
    raw = rank1_statistics(net, moments="raw")
    centred = rank1_statistics(net, moments="centred")
    assert raw["sigma_mn"] == pytest.approx(np.mean(C[:, 0] * C[:, 1]))
    mean_m, mean_n = C[:, 0].mean(), C[:, 1].mean()
    assert raw["sigma_mn"] - centred["sigma_mn"] == pytest.approx(mean_m * mean_n, abs=2e-3)
    assert rank1_statistics(net) == raw  # the default: what the dynamics use
    # the exact recurrent input (1/N) n^T tanh(x) at x = kappa m + v I: raw moments predict it
    kappa, v = 0.5, 0.2
    x = kappa * C[:, 0] + v * C[:, 2]
    exact = np.mean(C[:, 1] * np.tanh(x))
    errors = {}
    for name, st in (("raw", raw), ("centred", centred)):
        pred = kappa_velocity(kappa, v, st) + kappa
        errors[name] = abs(pred - exact)
    assert errors["raw"] < errors["centred"]
    with pytest.raises(ValueError, match="moments"):
        rank1_statistics(net, moments="both")
    with pytest.raises(ValueError, match="moments"):
        EffectiveCircuit.from_model(net, moments="both")


def test_reference_values_are_labelled_by_source():
    assert PROJECT_RANK1["sigma_mn"] == 1.4 and PROJECT_RANK1["sigma_nI"] == 2.6
    assert RELEASED_RANK1["sigma_nI"] * RELEASED_RANK1["sigma_mw"] > 0
    assert PROJECT_WM_SIGMAS["sigma_n1m1"] == PROJECT_WM_SIGMAS["sigma_n2m2"] == 1.0
    assert RELEASED_WM_SIGMAS["sigma_n1m1"] > 1.0 > 0.5 > RELEASED_WM_SIGMAS["sigma_n2m2"]
    brief = EffectiveCircuit.from_sigmas(PROJECT_WM_SIGMAS)
    assert np.allclose(brief.sigma_nm, np.diag([1.0, 1.0]))
    released = EffectiveCircuit.from_sigmas(RELEASED_WM_SIGMAS)
    assert np.allclose(np.diag(released.sigma_nm), [1.03, 0.15])
    with pytest.raises(ValueError, match="missing"):
        EffectiveCircuit.from_sigmas({"sigma_n1m1": 1.0})
