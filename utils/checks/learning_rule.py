"""Self-checks for Lab 3 (the learning rule): the feedback-alignment backward pass, the RFLO
eligibility-trace step and the RFLO weight update, each compared with the reference on a tiny
network. Each check compares with the library function of the same name in
:mod:`utils.learning` (``feedback_alignment.fa_backward``, ``rflo.eligibility_step``,
``rflo.rflo_weight_update``, ``estimators.node_perturbation_grad``,
``estimators.gradient_estimator_stats``)."""

from __future__ import annotations

import torch

from ..learning import estimators, feedback_alignment, rflo
from .core import expect, expect_close, expect_shape, self_check

__all__ = ["check_fa_backward", "check_eligibility_step", "check_rflo_weight_update",
           "check_node_perturbation_grad", "check_estimator_stats"]


def _linear_problem(seed: int, batch: int, n_in: int, n_out: int):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n_out, n_in, generator=gen)
    x = torch.randn(batch, n_in, generator=gen)
    t = torch.randn(batch, n_out, generator=gen)
    true = (x @ w.t() - t).t() @ x
    return w, x, t, true


@self_check("Exercise 3.1: the feedback-alignment backward pass",
            hint="Only one of the three gradients changes under feedback alignment: the one sent "
                 "to the layer below. Work out the shapes: which matrix of shape (out, in) turns "
                 "a (batch, out) error into a (batch, in) one?")
def check_fa_backward(fn):
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(5, 3, generator=gen)
    x = torch.randn(5, 4, generator=gen)
    w = torch.randn(3, 4, generator=gen)
    fb = torch.randn(3, 4, generator=gen)
    got = fn(g, x, w, fb)
    expect(isinstance(got, (tuple, list)) and len(got) == 3,
           "return a tuple (grad_input, grad_weight, grad_bias)")
    ref = feedback_alignment.fa_backward(g, x, w, fb)
    for name, a, b in zip(["grad_input", "grad_weight", "grad_bias"], got, ref):
        if name == "grad_input" and torch.allclose(torch.as_tensor(a), g @ w, atol=1e-5):
            expect(False, "grad_input uses the forward weights: that is backprop, not feedback alignment")
        expect_close(a, b, name)


@self_check("Exercise 3.2: the RFLO eligibility-trace step",
            hint="The trace is a leaky average: it keeps a fraction of its old value and adds "
                 "the new co-activation. The co-activation of synapse (a, b) pairs a quantity of "
                 "postsynaptic unit a with one of presynaptic unit b: an outer product per trial.")
def check_eligibility_step(fn):
    gen = torch.Generator().manual_seed(1)
    p = torch.randn(2, 3, 4, generator=gen)
    u = torch.randn(2, 3, generator=gen)
    pre = torch.randn(2, 4, generator=gen)
    expect_close(fn(p, u, pre, 0.2), rflo.eligibility_step(p, u, pre, 0.2),
                 "eligibility_step(trace, u, pre, alpha=0.2)")
    expect_close(fn(torch.zeros(2, 3, 4), u, pre, 1.0),
                 rflo.eligibility_step(torch.zeros(2, 3, 4), u, pre, 1.0),
                 "eligibility_step(zeros, u, pre, alpha=1)")


@self_check("Exercise 3.3: the RFLO weight update",
            hint="First give every postsynaptic unit its share of the error through the feedback "
                 "matrix (one number per trial and unit), then let it scale that unit's traces; "
                 "sum over trials.")
def check_rflo_weight_update(fn):
    gen = torch.Generator().manual_seed(2)
    p = torch.randn(3, 4, 5, generator=gen)
    err = torch.randn(3, 2, generator=gen)
    fb = torch.randn(4, 2, generator=gen)
    expect_close(fn(p, err, fb), rflo.rflo_weight_update(p, err, fb),
                 "rflo_weight_update(trace, error, feedback)")


@self_check("Exercise 3.4: node perturbation",
            hint="Perturb the outputs, not the weights, and compare each trial's loss with and "
                 "without the perturbation. A perturbation that lowered the loss should be "
                 "credited with a minus sign. Work out, for a single output, what E[(e . xi) xi] is "
                 "for standard normal xi: that tells you what to divide by.")
def check_node_perturbation_grad(fn):
    w, x, t, true = _linear_problem(0, 2000, 4, 3)
    got = fn(w, x, t, 0.5, torch.Generator().manual_seed(1))
    expect_shape(got, tuple(w.shape), "node_perturbation_grad(weight (3, 4), ...)")
    got = torch.as_tensor(got, dtype=torch.float64)
    cos = float(got.flatten() @ true.double().flatten() / (got.norm() * true.double().norm()))
    expect(cos > 0.8, f"with 2000 trials the estimate should point along the true gradient "
                      f"(cosine > 0.8), got cosine {cos:.2f}")
    ratio = float(got.norm() / true.double().norm())
    expect(0.8 < ratio < 1.25, f"the estimate should have the size of the true gradient (it is "
                               f"unbiased); yours is {ratio:.2f} times as large: check what you "
                               f"divide the loss change by")
    again = torch.as_tensor(fn(w, x, t, 0.5, torch.Generator().manual_seed(1)), dtype=torch.float64)
    expect(torch.allclose(got, again), "two generators in the same state must give the same "
                                       "estimate: draw the perturbations from the generator")


@self_check("Exercise 3.5: an estimator's cosine, bias and variance",
            hint="Flatten every estimate. The variance is how far single estimates scatter around "
                 "their own mean (use K - 1). For the bias, remember that the mean of K "
                 "estimates is itself noisy: how far from E[e] do you expect it to be?")
def check_estimator_stats(fn):
    g = torch.tensor([1.0, 0.0])
    same = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    got = fn(same, g)
    expect(isinstance(got, dict) and {"cosine", "bias", "variance"} <= set(got),
           "return a dict with the keys 'cosine', 'bias' and 'variance'")
    for key, want in [("cosine", 1.0), ("bias", 0.0), ("variance", 0.0)]:
        expect(abs(float(got[key]) - want) < 1e-6, f"for estimates that all equal the true "
                                                   f"gradient, {key} should be {want}, got {got[key]}")
    shifted = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    got = fn(shifted, g)
    expect(abs(float(got["bias"]) - 1.0) < 1e-6,
           f"estimates that are all g + (0, 1) have squared bias ||(0, 1)||^2 / ||g||^2 = 1, got "
           f"{got['bias']}")
    expect(abs(float(got["cosine"]) - 2 ** -0.5) < 1e-6, "cosine of (1, 1) with (1, 0) is 0.707")
    spread = torch.tensor([[0.0, 1.0], [2.0, -1.0]])  # mean = g exactly
    got = fn(spread, g)
    ref = estimators.gradient_estimator_stats(spread, g)
    for key in ["cosine", "bias", "variance"]:
        expect(abs(float(got[key]) - ref[key]) < 1e-6,
               f"{key} for the estimates (0, 1) and (2, -1) of g = (1, 0): expected "
               f"{ref[key]:.4f}, got {float(got[key]):.4f}")
