"""The dendritic-error toy (utils.dendritic_error): argument checks, the self-predicting state,
the equivalence of its local updates with feedback alignment / backprop, and learning."""

from __future__ import annotations

import pytest
import torch

from utils.learning.dendritic_error import DendriticErrorNet
from utils.tasks import TeacherRegressionTask


def _self_predicting(net: DendriticErrorNet) -> DendriticErrorNet:
    net.w_ih = net.w_oh.clone()
    net.w_hi = net.b.clone()
    return net


@pytest.mark.parametrize("kwargs, match", [
    (dict(apical_gain=0.0), "apical_gain"), (dict(nudging=1.0), "nudging"),
    (dict(interneuron_nudging=-0.1), "interneuron_nudging"), (dict(seed=-1), "seed"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DendriticErrorNet(3, 4, 2, **kwargs)


def test_bad_shapes_and_types_are_named():
    net = DendriticErrorNet(3, 4, 2)
    with pytest.raises(ValueError, match="x"):
        net.settle(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="target"):
        net.settle(torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(TypeError, match="n_updates"):
        net.learn_self_prediction(torch.zeros(8, 3), 2.5)


def test_apical_potential_is_zero_in_the_self_predicting_state_without_a_target():
    net = _self_predicting(DendriticErrorNet(5, 8, 3, seed=2))
    s = net.settle(torch.randn(16, 5, generator=torch.Generator().manual_seed(0)))
    assert s.apical.abs().max() < 1e-6
    assert torch.allclose(s.hidden, torch.tanh(s.basal), atol=1e-6)


def test_phase_one_learns_the_self_predicting_state():
    net = DendriticErrorNet(6, 10, 3, seed=1)
    pool = torch.randn(1024, 6, generator=torch.Generator().manual_seed(0))
    before = (net.w_hx.clone(), net.w_oh.clone())
    hist = net.learn_self_prediction(pool, 1500)
    assert hist["apical"][-1] < hist["apical"][0] / 50
    s = net.settle(torch.randn(256, 6, generator=torch.Generator().manual_seed(9)))
    # interneurons predict the output on new inputs
    assert (s.interneuron - s.output).abs().mean() < 0.03 * s.output.abs().mean()
    # without targets the forward weights do not learn
    assert torch.equal(net.w_hx, before[0]) and torch.equal(net.w_oh, before[1])


def _fa_updates(net: DendriticErrorNet, x: torch.Tensor, y: torch.Tensor, feedback: torch.Tensor):
    """-gradient of the MSE for the two-layer net, error sent back through ``feedback``."""
    w_hx = net.w_hx.clone().requires_grad_(True)
    w_oh = net.w_oh.clone().requires_grad_(True)
    h = torch.tanh(x @ w_hx.t())
    out = h @ w_oh.t()
    loss = (out - y).pow(2).mean()
    g_oh, = torch.autograd.grad(loss, w_oh, retain_graph=True)
    d_out = 2 * (out - y).detach() / out.numel()
    d_h = (d_out @ feedback.t()) * (1 - h.detach() ** 2)
    return -g_oh, -(d_h.t() @ x)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("exact_feedback", [False, True])
def test_local_updates_equal_feedback_alignment_and_backprop(exact_feedback):
    net = _self_predicting(DendriticErrorNet(5, 7, 3, apical_gain=1e-2, nudging=1e-2, seed=4))
    if exact_feedback:  # B = W_oh^T: the dendritic error is backprop's error
        net.b = net.w_oh.t().clone()
        net.w_hi = net.b.clone()
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 5, generator=gen), torch.randn(32, 3, generator=gen)
    d_oh, d_hx, _ = net.forward_updates(x, y, lr=1.0)
    fa_oh, fa_hx = _fa_updates(net, x, y, net.b)
    # equal up to terms of order nudging and apical gain (1%), and float32 rounding
    assert _rel(d_oh, fa_oh) < 0.03 and _rel(d_hx, fa_hx) < 0.03
    if exact_feedback:
        w_hx = net.w_hx.clone().requires_grad_(True)
        loss = (torch.tanh(x @ w_hx.t()) @ net.w_oh.t() - y).pow(2).mean()
        g_hx, = torch.autograd.grad(loss, w_hx)
        assert _rel(d_hx, -g_hx) < 0.03


def test_apical_potential_carries_the_error_with_a_target():
    net = _self_predicting(DendriticErrorNet(5, 7, 3, seed=4))
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 5, generator=gen), torch.randn(64, 3, generator=gen)
    s = net.settle(x, y)
    proxy = net.apical_error_proxy(s, y)
    corr = torch.corrcoef(torch.stack([s.apical.flatten(), proxy.flatten()]))[0, 1]
    assert corr > 0.99 and s.iterations < 100


def test_learns_a_teacher_task():
    task = TeacherRegressionTask(n_input=10, n_hidden=8, n_output=4, gain=1.5, seed=0)
    x_test, y_test = task.test_set()
    net = DendriticErrorNet(10, 16, 4, seed=3)
    net.learn_self_prediction(torch.randn(2048, 10, generator=torch.Generator().manual_seed(0)), 500)
    hist = net.learn(lambda: task.batch(64), 400, test=(x_test, y_test), test_every=100)
    assert hist["test_loss"][-1] < hist["test_loss"][0] / 4
    assert hist["test_step"] == [0, 100, 200, 300, 399]


def test_fa_updates_match_local_rules_only_in_the_self_predicting_state():
    import torch

    from utils.learning.dendritic_error import DendriticErrorNet
    from utils.learning.feedback_alignment import angle_between

    net = DendriticErrorNet(6, 5, 3, apical_gain=0.05, nudging=0.05, interneuron_nudging=0.5, seed=0)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 6, generator=gen), torch.randn(32, 3, generator=gen)
    untrained = angle_between(net.forward_updates(x, y)[1], net.fa_updates(x, y)[1])
    net.learn_self_prediction(torch.randn(512, 6, generator=gen), 2000)
    trained = angle_between(net.forward_updates(x, y)[1], net.fa_updates(x, y)[1])
    assert trained < 10 < untrained
