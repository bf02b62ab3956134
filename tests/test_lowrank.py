import numpy as np
import pytest
import torch

from utils.tasks import (DECISION_STRENGTHS, WM_FREQUENCIES, decision_batch, lowrank_loss,
                         sign_accuracy, working_memory_batch)
from utils.models import LowRankFunction, LowRankRNN
from utils.analysis.lowrank_stats import (connectivity_labels, connectivity_matrix,
                                          evaluate_lowrank, fit_gaussian, latents, resample)
from utils.training import train_lowrank


# --- tasks ---------------------------------------------------------------------------------------

def test_decision_batch_follows_the_sheet():
    g = torch.Generator().manual_seed(0)
    b = decision_batch(4000, generator=g)
    assert b["inputs"].shape == (75, 4000, 1)
    assert b["targets"].shape == b["strengths"].shape == (4000,)
    assert np.allclose(np.sort(b["strengths"].unique().numpy()), np.sort(DECISION_STRENGTHS))
    assert torch.equal(b["targets"], torch.sign(b["strengths"]))
    u = b["inputs"][..., 0]
    # stimulus on for 5 <= t <= 45 (inclusive), noise std 0.03 at every step
    noise = u.clone()
    noise[5:46] -= b["strengths"]
    assert abs(noise.std().item() - 0.03) < 1e-3
    assert abs(noise.mean().item()) < 1e-3
    per_step_mean = (u * b["targets"]).mean(1)
    assert per_step_mean[:5].abs().max() < 0.01 and per_step_mean[46:].abs().max() < 0.01
    assert per_step_mean[5:46].min() > 0.15  # mean |strength| = 0.0992 * ... = 0.198


def test_decision_batch_is_reproducible_and_validates():
    a = decision_batch(8, generator=torch.Generator().manual_seed(3))
    b = decision_batch(8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a["inputs"], b["inputs"])
    custom = decision_batch(5, strengths=[0.5], noise_std=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.all(custom["targets"] == 1) and custom["inputs"][10, 0, 0] == 0.5
    with pytest.raises(ValueError, match="batch_size"):
        decision_batch(0)
    with pytest.raises(TypeError, match="batch_size"):
        decision_batch(2.5)
    with pytest.raises(ValueError, match="strengths"):
        decision_batch(3, strengths=[0.0, 1.0])
    with pytest.raises(ValueError, match="stim_off"):
        decision_batch(3, stim_on=10, stim_off=5)
    with pytest.raises(ValueError, match="noise_std"):
        decision_batch(3, noise_std=-1)
    with pytest.raises(TypeError, match="generator"):
        decision_batch(3, generator=1)


def test_working_memory_batch_follows_the_sheet():
    b = working_memory_batch(500, generator=torch.Generator().manual_seed(0))
    u = b["inputs"][..., 0]
    assert u.shape == (76, 500)
    assert set(b["f1"].unique().tolist()) == set(WM_FREQUENCIES)
    assert torch.allclose(b["u1"], (b["f1"] - 22) / 24) and torch.allclose(b["u2"], (b["f2"] - 22) / 24)
    assert torch.allclose(b["targets"], (b["f1"] - b["f2"]) / 24)
    assert torch.allclose(u[5:11], b["u1"].expand(6, -1)) and torch.allclose(u[60:71], b["u2"].expand(11, -1))
    assert torch.all(u[:5] == 0) and torch.all(u[11:60] == 0) and torch.all(u[71:] == 0)
    short = working_memory_batch(3, u2_on=36, u2_off=46)
    assert short["inputs"].shape == (52, 3, 1)
    with pytest.raises(ValueError, match="u2_on"):
        working_memory_batch(3, u2_on=8)
    with pytest.raises(ValueError, match="frequencies"):
        working_memory_batch(3, frequencies=[10, 10])


# --- the network ---------------------------------------------------------------------------------

def test_lowrank_function_backward_matches_gradcheck():
    torch.manual_seed(0)
    drive = torch.randn(7, 3, 5, dtype=torch.double, requires_grad=True)
    m = torch.randn(5, 2, dtype=torch.double, requires_grad=True)
    n = torch.randn(5, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d, a, b: LowRankFunction.apply(d, a, b, 0.2), (drive, m, n))


@pytest.mark.parametrize("rank,n_input", [(1, 1), (2, 1), (3, 2)])
def test_forward_matches_plain_euler_with_full_matrix(rank, n_input):
    net = LowRankRNN(20, rank, n_input, seed=1)
    u = torch.randn(12, 4, n_input)
    with torch.no_grad():
        z, x = net(u)
        J = net.recurrent_weights()
        state = torch.zeros(4, 20)
        for t in range(12):
            state = state + net.alpha * (-state + torch.tanh(state) @ J.t() + u[t] @ net.I.t())
            assert torch.allclose(state, x[t], atol=1e-5)
            assert torch.allclose(net.step(x[t - 1] if t else torch.zeros(4, 20), u[t]), x[t], atol=1e-5)
            assert torch.allclose(z[t], torch.tanh(state) @ net.w / 20, atol=1e-6)


def test_model_gradients_match_autograd_loop():
    torch.manual_seed(4)
    net = LowRankRNN(16, 2, 1, seed=2).double()
    u = torch.randn(9, 3, 1, dtype=torch.double)
    z, x = net(u)
    (z.pow(2).sum() + x.pow(2).mean()).backward()
    g_fast = net.m.grad.clone(), net.n.grad.clone()
    net.zero_grad()
    state = torch.zeros(3, 16, dtype=torch.double)
    zs, xs = [], []
    for t in range(9):
        state = net.step(state, u[t])
        xs.append(state)
        zs.append(torch.tanh(state) @ net.w / 16)
    (torch.stack(zs).pow(2).sum() + torch.stack(xs).pow(2).mean()).backward()
    assert torch.allclose(g_fast[0], net.m.grad) and torch.allclose(g_fast[1], net.n.grad)


def test_model_initialisation_and_validation():
    net = LowRankRNN(4000, 2, 1, w_std=4.0, seed=0)
    assert net.m.shape == net.n.shape == (4000, 2) and net.I.shape == (4000, 1) and net.w.shape == (4000,)
    assert [name for name, _ in net.named_parameters()] == ["m", "n"]
    assert abs(net.w.std().item() - 4.0) < 0.15 and abs(net.m.std().item() - 1.0) < 0.05
    assert torch.equal(LowRankRNN(10, seed=3).m, LowRankRNN(10, seed=3).m)
    with pytest.raises(ValueError, match="dt"):
        LowRankRNN(10, dt=200.0)
    with pytest.raises(ValueError, match="rank"):
        LowRankRNN(10, rank=0)
    with pytest.raises(ValueError, match="w_std"):
        LowRankRNN(10, w_std=0.0)
    with pytest.raises(ValueError, match=r"u must be a tensor of shape \(time, batch, 1\)"):
        LowRankRNN(10)(torch.zeros(5, 2, 3))
    with pytest.raises(ValueError, match="u must"):
        LowRankRNN(10)([1, 2, 3])


def test_loss_and_accuracy():
    z = torch.tensor([[0.0, 0.0], [1.0, -0.5], [1.0, 0.5]])
    t = torch.tensor([1.0, -1.0])
    assert lowrank_loss(z, t, 2).item() == pytest.approx((0 + 0.25 + 0 + 2.25) / 4)
    assert sign_accuracy(z, t, 1) == 0.5
    assert sign_accuracy(z, torch.tensor([1.0, 0.0]), 1) == 1.0  # zero targets are skipped
    with pytest.raises(ValueError, match="loss_steps"):
        lowrank_loss(z, t, 4)
    with pytest.raises(ValueError, match="targets"):
        lowrank_loss(z, torch.ones(3), 1)


def test_training_reduces_the_loss_and_stops_early():
    torch.manual_seed(0)
    net = LowRankRNN(64, 1, seed=0)
    g = torch.Generator().manual_seed(0)
    val = decision_batch(256, generator=torch.Generator().manual_seed(9))
    before = evaluate_lowrank(net, val)["loss"]
    hist = train_lowrank(net, lambda: decision_batch(32, generator=g), 400, target_loss=0.1,
                         progress=False)
    after = evaluate_lowrank(net, val)
    assert hist.stopped_at < 400 and len(hist["loss"]) == hist.stopped_at
    assert after["loss"] < before and after["accuracy"] > 0.9
    assert not net.training
    with pytest.raises(TypeError, match="batch"):
        train_lowrank(net, lambda: (1, 2), 2, progress=False)
    with pytest.raises(ValueError, match="n_updates"):
        train_lowrank(net, lambda: decision_batch(2), 0)


# --- connectivity statistics -------------------------------------------------------------------

def test_connectivity_matrix_and_gaussian_fit():
    net = LowRankRNN(50, 2, 1, seed=5)
    C = connectivity_matrix(net)
    assert C.shape == (50, 6)
    assert connectivity_labels(net) == ["m1", "m2", "n1", "n2", "I", "w"]
    assert connectivity_labels(LowRankRNN(5)) == ["m", "n", "I", "w"]
    assert torch.equal(C[:, 0], net.m[:, 0].detach()) and torch.equal(C[:, -1], net.w)
    mean, cov = fit_gaussian(net)
    assert np.allclose(cov.numpy(), np.cov(C.double().numpy(), rowvar=False))
    assert np.allclose(mean.numpy(), C.double().numpy().mean(0))


def test_resample_reproduces_the_statistics():
    net = LowRankRNN(200, 1, seed=0)
    with torch.no_grad():
        net.n.copy_(0.8 * net.m + 0.3 * net.I)  # correlated vectors, as after training
    mean, cov = fit_gaussian(net)
    big = resample(net, n_units=40000, seed=1)
    assert big.n_units == 40000 and big.rank == 1 and big.w_std == net.w_std
    _, cov_big = fit_gaussian(big)
    assert torch.allclose(cov_big, cov, atol=0.1 * cov.abs().max().item())
    assert not torch.equal(resample(net, seed=1).m, resample(net, seed=2).m)
    assert torch.equal(resample(net, seed=1).m, resample(net, seed=1).m)
    # singular covariances are fine (n is almost a combination of m and I here)
    degenerate = torch.zeros(4, 4)
    degenerate[0, 0] = degenerate[0, 1] = degenerate[1, 0] = degenerate[1, 1] = 1.0
    same = resample(net, n_units=10, cov=degenerate, mean=torch.zeros(4))
    assert torch.allclose(same.m, same.n) and torch.all(same.w == 0)
    with pytest.raises(ValueError, match="cov"):
        resample(net, cov=torch.eye(3))
    with pytest.raises(ValueError, match="semi-definite"):
        resample(net, cov=-torch.eye(4))
    with pytest.raises(TypeError, match="LowRankRNN"):
        resample(torch.nn.Linear(2, 2))


def test_latents_exact_and_projection():
    net = LowRankRNN(300, 2, 1, seed=3)
    u = decision_batch(6, generator=torch.Generator().manual_seed(0))["inputs"]
    with torch.no_grad():
        sim = net.simulate(u)
    exact = latents(net, sim["x"], method="exact")
    assert torch.allclose(exact, sim["K"], atol=1e-4)
    proj = latents(net, sim["x"])
    assert proj.shape == (75, 6, 2)
    m = net.m.detach()
    assert torch.allclose(proj, sim["x"] @ m / (m * m).sum(0))
    with pytest.raises(ValueError, match="method"):
        latents(net, sim["x"], method="pca")
    with pytest.raises(ValueError, match="x must"):
        latents(net, sim["x"][..., :10])


def test_output_and_chunked_evaluation_match_forward():
    net = LowRankRNN(40, 1, seed=2)
    batch = decision_batch(37, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z, _ = net(batch["inputs"])
        assert torch.allclose(net.output(batch["inputs"]), z)
    whole = evaluate_lowrank(net, batch, chunk=1000)
    assert evaluate_lowrank(net, batch, chunk=5) == pytest.approx(whole)
    assert whole["loss"] == pytest.approx(lowrank_loss(z, batch["targets"]).item())


# --- the lab's self-checks ---------------------------------------------------------------------

def test_lab_checks_pass_the_references_and_catch_mistakes():
    from utils.checks import ERROR, FAIL, NOT_IMPLEMENTED, PASS
    from utils.checks import lowrank_decision as lab

    for name in ["decision_batch", "lowrank_forward", "resample_connectivity", "mean_gain"]:
        assert getattr(lab, f"check_{name}")(getattr(lab, f"reference_{name}"), quiet=True).status == PASS

    def no_generator(batch_size, generator=None):
        return lab.reference_decision_batch(batch_size)  # ignores the seed

    def late_stimulus(batch_size, generator=None):
        b = lab.reference_decision_batch(batch_size, generator)
        b["inputs"][5, :, 0] -= b["strengths"]  # stimulus starts at t = 6
        return b

    assert lab.check_decision_batch(no_generator, quiet=True).status == FAIL
    assert lab.check_decision_batch(late_stimulus, quiet=True).status == FAIL

    def dense_but_wrong_order(u, m, n, I, w, alpha):  # records x before the update
        z, x = lab.reference_lowrank_forward(u, m, n, I, w, alpha)
        return torch.cat([torch.zeros_like(z[:1]), z[:-1]]), torch.cat([torch.zeros_like(x[:1]), x[:-1]])

    assert lab.check_lowrank_forward(dense_but_wrong_order, quiet=True).status == FAIL

    def bootstrap(C, n_units, generator=None):
        C = torch.as_tensor(C)
        return C[torch.randint(len(C), (n_units,), generator=generator)]

    def independent(C, n_units, generator=None):  # ignores the correlations
        C = torch.as_tensor(C, dtype=torch.float64)
        return (C.mean(0) + C.std(0) * torch.randn(n_units, C.shape[1], generator=generator,
                                                   dtype=torch.float64)).float()

    assert lab.check_resample_connectivity(bootstrap, quiet=True).status == FAIL
    assert lab.check_resample_connectivity(independent, quiet=True).status == FAIL

    sheet_prefactor = lambda d: lab.reference_mean_gain(d) * np.sqrt(2 * np.pi) / (2 * np.pi)  # noqa: E731
    result = lab.check_mean_gain(sheet_prefactor, quiet=True)
    assert result.status == FAIL and "1/sqrt(2 pi)" in result.message

    def todo(*args, **kwargs):
        raise NotImplementedError

    assert lab.check_mean_gain(todo, quiet=True).status == NOT_IMPLEMENTED
    assert lab.check_lowrank_forward(lambda *a: 1 / 0, quiet=True).status == ERROR


def test_latents_accepts_vectors():
    from utils.analysis.lowrank_stats import latents
    net = LowRankRNN(30, 2, 1, seed=3)
    u = torch.randn(9, 4, 1, generator=torch.Generator().manual_seed(0))
    _, x = net(u)
    by_model = latents(net, x)
    close = dict(rtol=1e-5, atol=1e-6)  # the same sums, possibly in another order
    assert torch.allclose(latents(net.m, x), by_model, **close)
    assert torch.allclose(latents(net.m[:, 0], x), by_model[..., :1], **close)
    assert torch.allclose(latents(net.m, x, method="exact", inputs=net.I),
                          latents(net, x, method="exact"), **close)
    with pytest.raises(ValueError, match="inputs"):
        latents(net.m, x, method="exact")
    with pytest.raises(TypeError, match="model"):
        latents("m", x)
