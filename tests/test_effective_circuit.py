import numpy as np
import pytest
import torch

from utils.analysis.effective_circuit import (PROJECT_WM_SIGMAS, CircuitTrajectory, EffectiveCircuit,
                                              condition_index, fit_time_constant, flow_field,
                                              simulate_circuit)
from utils.models import LowRankRNN
from utils.analysis.lowrank_stats import latents


# --- the circuit ------------------------------------------------------------------------------

def _random_vectors(n_units=20_000, rank=2, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_units, 2 * rank + 2))
    mix = np.eye(2 * rank + 2) + 0.4 * rng.standard_normal((2 * rank + 2, 2 * rank + 2))
    vec = base @ mix.T
    vec -= vec.mean(0)
    return vec[:, :rank], vec[:, rank:2 * rank], vec[:, 2 * rank], vec[:, 2 * rank + 1]


def test_paper_circuit_values_and_diagonal():
    c = EffectiveCircuit.paper()
    s = c.sigmas()
    for key, value in PROJECT_WM_SIGMAS.items():
        assert s[key] == pytest.approx(value)
    assert s["sigma_n1m2"] == 0 and s["sigma_m1"] == 1 and s["sigma_I"] == 1 and c.rank == 2
    m, n, I, w = _random_vectors()
    full = EffectiveCircuit.from_vectors(m, n, I, w)
    d = full.diagonal()
    assert d.sigma_nm[0, 1] == 0 and d.sigma_mm[0, 1] == 0 and d.sigma_Iw == 0
    assert d.sigma_nm[0, 0] == full.sigma_nm[0, 0]


def test_from_vectors_accepts_tensors_and_rank_one():
    m, n, I, w = _random_vectors(n_units=300)
    a = EffectiveCircuit.from_vectors(m, n, I, w)
    b = EffectiveCircuit.from_vectors(torch.tensor(m), torch.tensor(n), torch.tensor(I), torch.tensor(w))
    np.testing.assert_allclose(a.sigma_nm, b.sigma_nm)
    np.testing.assert_allclose(a.sigma_nm[0, 1], np.mean((n[:, 0] - n[:, 0].mean()) * (m[:, 1] - m[:, 1].mean())))
    one = EffectiveCircuit.from_vectors(m[:, 0], n[:, 0], I, w)
    assert one.rank == 1 and one.sigma_nm.shape == (1, 1)


def test_circuit_validation():
    with pytest.raises(ValueError, match="sigma_nm must be a square"):
        EffectiveCircuit(sigma_nm=np.ones((2, 3)), sigma_nI=[1, 1], sigma_mw=[1, 1])
    with pytest.raises(ValueError, match="sigma_nI must have shape"):
        EffectiveCircuit(sigma_nm=np.eye(2), sigma_nI=[1, 1, 1], sigma_mw=[1, 1])
    with pytest.raises(ValueError, match="dt must be <= tau"):
        EffectiveCircuit(sigma_nm=np.eye(2), sigma_nI=[1, 1], sigma_mw=[1, 1], dt=200.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        EffectiveCircuit(sigma_nm=np.eye(2), sigma_nI=[1, 1], sigma_mw=[1, 1],
                         sigma_mm=np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="tau"):
        EffectiveCircuit(sigma_nm=np.eye(2), sigma_nI=[1, 1], sigma_mw=[1, 1], tau=0.0)
    with pytest.raises(ValueError, match="m and n must have the same shape"):
        EffectiveCircuit.from_vectors(np.ones((5, 2)), np.ones((5, 1)), np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="I must have 5 entries"):
        EffectiveCircuit.from_vectors(np.ones((5, 2)), np.ones((5, 2)), np.ones(4), np.ones(5))
    c = EffectiveCircuit.paper()
    with pytest.raises(ValueError, match="kappa must have shape"):
        c.velocity(np.zeros(3), 0.0)


def test_circuit_matches_a_large_gaussian_network():
    """Stein's lemma: for Gaussian vectors the population averages equal the circuit's terms."""
    m, n, I, w = _random_vectors(n_units=200_000)
    c = EffectiveCircuit.from_vectors(m, n, I, w)
    kappa, v = np.array([0.7, -0.4]), 0.3
    x = m @ kappa + I * v
    phi = np.tanh(x)
    np.testing.assert_allclose(c.delta(kappa, v), x.std(), rtol=1e-3)
    np.testing.assert_allclose(c.velocity(kappa, v), -kappa + n.T @ phi / len(x), atol=5e-3)
    np.testing.assert_allclose(c.readout(kappa, v), w @ phi / len(x), atol=5e-3)


def test_simulate_circuit_equals_network_euler_steps():
    """The latent dynamics of a (huge, Gaussian) network follow the circuit step by step."""
    m, n, I, w = _random_vectors(n_units=100_000, seed=1)
    c = EffectiveCircuit.from_vectors(m, n, I, w)
    u = np.zeros((30, 2))
    u[3:8, 0], u[10:20, 1] = 0.5, -0.4
    traj = simulate_circuit(c, u)
    assert isinstance(traj, CircuitTrajectory)
    assert traj.kappa.shape == (30, 2, 2) and traj.v.shape == (30, 2) and traj.z.shape == (30, 2)
    alpha, n_units = 0.2, len(I)
    kappa, v = np.zeros((2, 2)), np.zeros(2)  # x = m kappa + I v, updated like the full state
    zs = []
    for t in range(30):
        x = kappa @ m.T + v[:, None] * I
        kappa = (1 - alpha) * kappa + alpha * np.tanh(x) @ n / n_units
        v = (1 - alpha) * v + alpha * u[t]
        zs.append(np.tanh(kappa @ m.T + v[:, None] * I) @ w / n_units)
    np.testing.assert_allclose(v, traj.v[-1], atol=1e-10)
    np.testing.assert_allclose(kappa, traj.kappa[-1], atol=2e-2)
    np.testing.assert_allclose(np.array(zs), traj.z, atol=2e-2)


def test_circuit_from_model_follows_the_network_clock():
    """Same Euler clock as utils.lowrank: the circuit of a wide network tracks its latents."""
    model = LowRankRNN(20_000, rank=2, seed=3)
    with torch.no_grad():  # give it some structure: n_1 overlaps m_1 and I
        model.n[:, 0] = 0.8 * model.m[:, 0] + 0.6 * model.I[:, 0]
    c = EffectiveCircuit.from_model(model)
    assert c.sigma_nm[0, 0] == pytest.approx(0.8, abs=0.05)
    u = torch.zeros(40, 2, 1)
    u[5:11, 0, 0], u[5:11, 1, 0] = 0.5, -0.3
    with torch.no_grad():
        z, x = model(u)
    traj = simulate_circuit(c, u)
    kappa = latents(model, x, method="exact").numpy()
    np.testing.assert_allclose(kappa, traj.kappa, atol=2e-2)
    np.testing.assert_allclose(z.numpy(), traj.z, atol=3e-2)
    with pytest.raises(TypeError, match="LowRankRNN"):
        EffectiveCircuit.from_model(object())


def test_simulate_circuit_shapes_and_errors():
    c = EffectiveCircuit.paper()
    assert simulate_circuit(c, np.zeros(10)).kappa.shape == (10, 1, 2)
    assert simulate_circuit(c, torch.zeros(10, 3, 1)).z.shape == (10, 3)
    start = simulate_circuit(c, np.zeros((5, 3)), kappa0=[1.0, 0.0])
    assert np.all(start.kappa[0, :, 0] < 1.0)  # decays (sigma * gain < 1)
    with pytest.raises(TypeError, match="circuit must be an EffectiveCircuit"):
        simulate_circuit("paper", np.zeros((5, 2)))
    with pytest.raises(ValueError, match="one input channel"):
        simulate_circuit(c, np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match="kappa0 must have shape"):
        simulate_circuit(c, np.zeros((5, 2)), kappa0=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        simulate_circuit(c, np.full((5, 2), np.inf))


def test_flow_field():
    c = EffectiveCircuit.paper()
    k1, k2 = np.linspace(-1, 1, 5), np.linspace(-2, 2, 7)
    d1, d2 = flow_field(c, k1, k2, v=0.0)
    assert d1.shape == (7, 5) and d2.shape == (7, 5)
    assert d1[3, 2] == 0 and d2[3, 2] == 0  # the origin is a fixed point without input
    one = EffectiveCircuit(sigma_nm=1.0, sigma_nI=1.0, sigma_mw=1.0)
    with pytest.raises(ValueError, match="rank-2"):
        flow_field(one, k1, k2)


# --- state decomposition and accuracy ---------------------------------------------------------

def test_fit_time_constant():
    t = np.arange(20) * 20.0
    trace = np.exp(-t / 350.0)[:, None] * np.array([1.0, -2.0, 0.5])
    assert fit_time_constant(trace, 20.0) == pytest.approx(350.0, rel=1e-6)
    assert fit_time_constant(trace[:, 0], 20.0) == pytest.approx(350.0, rel=1e-6)
    assert fit_time_constant(np.exp(t / 100.0), 20.0) == pytest.approx(-100.0)
    assert fit_time_constant(np.ones(5), 20.0) == float("inf")
    with pytest.raises(ValueError, match="at least 2 time points"):
        fit_time_constant(np.ones(1), 20.0)
    with pytest.raises(ValueError, match="non-zero"):
        fit_time_constant(np.zeros(5), 20.0)
    with pytest.raises(ValueError, match="dt"):
        fit_time_constant(trace, 0.0)


def test_condition_index():
    f1 = torch.tensor([14.0, 10.0, 14.0, 10.0, 10.0])
    f2 = torch.tensor([10.0, 10.0, 10.0, 14.0, 10.0])
    index, pairs = condition_index(f1, f2)
    np.testing.assert_array_equal(pairs, [[10, 10], [10, 14], [14, 10]])
    np.testing.assert_array_equal(index, [1, 3, 0])
    with pytest.raises(ValueError, match="same length"):
        condition_index(f1, f2[:3])


# --- lab 11 self-checks -----------------------------------------------------------------------

def test_lab11_references_pass_and_wrong_answers_fail(capsys):
    from utils.checks import FAIL, NOT_IMPLEMENTED, PASS
    from utils.checks import lowrank_working_memory as lab
    from utils.tasks import working_memory_batch

    for name in ["curriculum_batch", "project_latents", "exact_overlap_draw", "effective_circuit"]:
        check = getattr(lab, f"check_{name}")
        assert check(getattr(lab, f"reference_{name}")).status == PASS

    def todo(*args):
        raise NotImplementedError

    assert lab.check_curriculum_batch(todo).status == NOT_IMPLEMENTED
    # the delay counted from the start of the first stimulus, not from its end
    assert lab.check_curriculum_batch(lambda b, d, g=None: working_memory_batch(
        b, generator=g, u2_on=5 + d, u2_off=15 + d) if d > 5 else working_memory_batch(
        b, generator=g, u2_on=11 + d, u2_off=21 + d)).status == FAIL
    # a plain draw (sample overlaps fluctuate), and a whitened one normalised by n - 1
    assert lab.check_exact_overlap_draw(lambda C, n, g=None: lab.reference_exact_overlap_draw(
        C, n, g) + 0.05 * torch.randn(n, C.shape[1], generator=g)).status == FAIL
    assert lab.check_exact_overlap_draw(lambda C, n, g=None: (
        lab.reference_exact_overlap_draw(C, n, g) - C.mean(0)) * (n / (n - 1)) ** 0.5
        + C.mean(0)).status == FAIL
    # projecting without dividing by |m|^2
    assert lab.check_project_latents(lambda x, m: x @ m).status == FAIL
    assert lab.check_effective_circuit(
        lambda u, s, a: (np.zeros((40, 4, 2)), np.zeros((40, 4)))).status == FAIL
    assert "PASS" in capsys.readouterr().out


def test_delay_curriculum():
    from utils.tasks import DelayCurriculum
    from utils.tasks import working_memory_batch

    cur = DelayCurriculum(4, start_delay=2, full_delay=4, updates_per_step=3,
                          generator=torch.Generator().manual_seed(0))
    assert cur.timing(49) == {"u1_on": 5, "u1_off": 10, "u2_on": 60, "u2_off": 70}
    assert cur.n_ramp == 6
    lengths = [cur()["inputs"].shape[0] for _ in range(10)]
    assert lengths == [29] * 3 + [30] * 3 + [31] * 4  # 27 + delay steps
    assert cur.delay == 4 and cur.calls == 10
    full = DelayCurriculum(2, start_delay=49)()
    assert full["inputs"].shape[0] == working_memory_batch(2)["inputs"].shape[0] == 76
    with pytest.raises(ValueError, match="start_delay"):
        DelayCurriculum(4, start_delay=50)
    with pytest.raises(TypeError, match="generator"):
        DelayCurriculum(4, generator=0)


def test_change_of_basis_and_eigenbasis_describe_the_same_network():
    m, n, I, w = _random_vectors(n_units=50_000, seed=4)
    c = EffectiveCircuit.from_vectors(m, n, I, w)
    u = np.zeros((40, 3))
    u[5:11] = [0.5, -0.3, 0.1]
    base = simulate_circuit(c, u)
    A = np.array([[1.0, 0.5], [-0.3, 2.0]])
    moved = c.change_basis(A)
    # the same as measuring the overlaps on m A and n A^{-T}
    direct = EffectiveCircuit.from_vectors(m @ A, n @ np.linalg.inv(A).T, I, w)
    np.testing.assert_allclose(moved.sigma_nm, direct.sigma_nm, atol=1e-10)
    np.testing.assert_allclose(moved.sigma_mw, direct.sigma_mw, atol=1e-10)
    np.testing.assert_allclose(moved.sigma_mm, direct.sigma_mm, atol=1e-10)
    traj = simulate_circuit(moved, u)
    np.testing.assert_allclose(traj.kappa @ A.T, base.kappa, atol=1e-10)
    np.testing.assert_allclose(traj.z, base.z, atol=1e-10)
    sym = EffectiveCircuit(sigma_nm=[[0.9, 0.5], [0.2, 0.4]], sigma_nI=[1.0, -1.0], sigma_mw=[1.0, 1.0])
    eig, A = sym.eigenbasis()
    mu = np.linalg.eigvals(sym.sigma_nm)
    np.testing.assert_allclose(np.diag(eig.sigma_nm), sorted(mu, reverse=True), atol=1e-10)
    assert abs(eig.sigma_nm[0, 1]) < 1e-10 and np.all(eig.sigma_nI >= 0)
    np.testing.assert_allclose(np.diag(eig.sigma_mm), 1.0)
    rot = EffectiveCircuit(sigma_nm=[[1.0, 0.7], [-0.7, 1.0]], sigma_nI=[1.0, 0.0], sigma_mw=[1.0, 0.0])
    with pytest.raises(ValueError, match="complex eigenvalues"):
        rot.eigenbasis()
    with pytest.raises(ValueError, match="invertible"):
        c.change_basis(np.ones((2, 2)))


def test_delay_curriculum_takes_a_batch_function():
    from utils.checks.lowrank_working_memory import reference_curriculum_batch
    from utils.tasks import DelayCurriculum

    calls = []

    def make(batch_size, delay, generator):
        calls.append(delay)
        return reference_curriculum_batch(batch_size, delay, generator)

    own = DelayCurriculum(4, start_delay=3, updates_per_step=2, make_batch=make,
                          generator=torch.Generator().manual_seed(0))
    ref = DelayCurriculum(4, start_delay=3, updates_per_step=2,
                          generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        a, b = own(), ref()
        assert torch.equal(a["inputs"], b["inputs"])
    assert calls == [3, 3, 4, 4, 5]
    with pytest.raises(TypeError, match="make_batch"):
        DelayCurriculum(4, make_batch=3)
