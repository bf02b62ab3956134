import math

import pytest
import torch

from utils.checks import FAIL, PASS
from utils.checks import learning_rule as lab3
from utils.learning import estimators
from utils.learning.estimators import (KolenPollack, gradient_estimator_stats,
                                       mlp_estimator_stats, mlp_node_perturbation,
                                       node_perturbation_grad, rnn_estimator_stats)
from utils.learning.feedback_alignment import make_mlp
from utils.models.tanh import LeakyTanhRNN
from utils.tasks.targets import PeriodicTargetTask, TeacherRegressionTask
from utils.training.losses import mse_loss


def _problem(batch=4000):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 5, generator=gen)
    x = torch.randn(batch, 5, generator=gen)
    t = torch.randn(batch, 3, generator=gen)
    return w, x, t, (x @ w.t() - t).t() @ x


def test_node_perturbation_is_unbiased_for_a_linear_layer():
    w, x, t, true = _problem()
    for sigma in [0.01, 1.0]:
        est = node_perturbation_grad(w, x, t, sigma, torch.Generator().manual_seed(1))
        cos = float((est * true).sum() / (est.norm() * true.norm()))
        assert cos > 0.9
        assert 0.85 < float(est.norm() / true.norm()) < 1.15


def test_node_perturbation_uses_only_its_generator():
    w, x, t, _ = _problem(50)
    state = torch.get_rng_state()
    a = node_perturbation_grad(w, x, t, 0.1, torch.Generator().manual_seed(3))
    b = node_perturbation_grad(w, x, t, 0.1, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(state, torch.get_rng_state())
    with pytest.raises(TypeError):
        node_perturbation_grad(w, x, t, 0.1, 3)
    with pytest.raises(ValueError):
        node_perturbation_grad(w, x, t, 0.0, torch.Generator())


def test_mlp_node_perturbation_averages_to_the_gradient():
    net = make_mlp([6, 5, 2], rule="bp", seed=0)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=gen), torch.randn(64, 2, generator=gen)
    true = torch.autograd.grad(mse_loss(net(x), y), [net[0].weight, net[2].weight])
    est = [torch.stack(g) for g in zip(*[mlp_node_perturbation(net, x, y, 1e-3, gen) for _ in range(3000)])]
    for e, g in zip(est, true):
        mean = e.mean(0)
        assert float((mean * g).sum() / (mean.norm() * g.norm())) > 0.9


def test_estimator_stats_known_values():
    g = torch.tensor([1.0, 0.0])
    s = gradient_estimator_stats(torch.tensor([[1.0, 1.0], [1.0, 1.0]]), g)
    assert s["cosine"] == pytest.approx(2 ** -0.5) and s["bias"] == pytest.approx(1.0)
    assert s["variance"] == pytest.approx(0.0)
    s = gradient_estimator_stats(torch.tensor([[0.0, 1.0], [2.0, -1.0]]), g)
    assert s["variance"] == pytest.approx(4.0) and s["bias"] == pytest.approx(-2.0)
    # an unbiased noisy estimator: the corrected bias is near zero for many estimates
    noisy = g + torch.randn(4000, 2, generator=torch.Generator().manual_seed(0))
    assert abs(gradient_estimator_stats(noisy, g)["bias"]) < 0.01
    with pytest.raises(ValueError):
        gradient_estimator_stats(noisy, torch.zeros(2))
    with pytest.raises(ValueError):
        gradient_estimator_stats(noisy[:1], g)


def test_kolen_pollack_aligns_feedback_with_forward_weights():
    net = make_mlp([6, 5, 3], rule="fa", seed=0)
    kp = KolenPollack(net, decay=0.05)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    first = float((net[2].feedback - net[2].weight).norm())
    for step in range(150):
        x, y = torch.randn(32, 6, generator=gen), torch.randn(32, 3, generator=gen)
        opt.zero_grad()
        mse_loss(net(x), y).backward()
        opt.step()
        kp(net, step)
    # B - W shrinks by the factor (1 - decay) per update, whatever the learning does
    assert float((net[2].feedback - net[2].weight).norm()) == pytest.approx(first * 0.95 ** 150, rel=1e-3)


def test_mlp_and_rnn_estimator_stats_run():
    task = TeacherRegressionTask(6, 5, 3, seed=0)
    net = make_mlp([6, 5, 3], rule="fa", seed=0)
    stats = mlp_estimator_stats(net, lambda: task.batch(16), 4, true_batch=task.batch(500))
    assert set(stats) == {"bp", "fa", "np"}
    assert stats["bp"]["cosine"] > stats["np"]["cosine"]
    rnn_task = PeriodicTargetTask(n_units=8, tau=2, period_tau=5, seed=0)
    rnn = LeakyTanhRNN(1, 8, 1, tau=2, seed=0)
    stats = rnn_estimator_stats(rnn, rnn_task, 3, batch_size=4, true_batch_size=16)
    assert set(stats) == {"RFLO", "BPTT"} and all(math.isfinite(v) for s in stats.values() for v in s.values())


def test_lab3_new_checks_pass_references_and_fail_mistakes():
    assert lab3.check_node_perturbation_grad(estimators.node_perturbation_grad, quiet=True).status == PASS
    assert lab3.check_estimator_stats(estimators.gradient_estimator_stats, quiet=True).status == PASS

    def wrong_scale(w, x, t, sigma, gen):
        return sigma * estimators.node_perturbation_grad(w, x, t, sigma, gen)

    assert lab3.check_node_perturbation_grad(wrong_scale, quiet=True).status == FAIL

    def uncorrected(e, g):
        s = estimators.gradient_estimator_stats(e, g)
        e2 = torch.as_tensor(e).reshape(len(e), -1)
        s["bias"] = float((e2.mean(0) - g.reshape(-1)).pow(2).sum() / g.pow(2).sum())
        return s

    assert lab3.check_estimator_stats(uncorrected, quiet=True).status == FAIL
