"""Self-checks for Lab 2 (the cost function): the L1 weight penalty, the L2 rate penalty, the
wiring cost and a clipped gradient-descent step. Each ``check_*`` takes the student's function and
prints one line.

The ``reference_*`` functions have exactly the lab's signatures and are what the lab falls back
on (through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import torch

from ..constraints import clipping, penalties, spatial
from .core import expect, expect_close, self_check

__all__ = [
    "reference_l1_penalty", "reference_rate_penalty", "reference_wiring_cost",
    "check_l1_penalty", "check_rate_penalty", "check_wiring_cost", "check_clipped_sgd_step",
    "reference_communicability_wiring_cost",
    "check_communicability_wiring_cost", "check_l1_proximal_step",
]


def reference_l1_penalty(weights: torch.Tensor) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.penalties.l1_weight_penalty`: ``sum_ij |W_ij|``."""
    return penalties.l1_weight_penalty(weights, "sum")


def reference_rate_penalty(rates: torch.Tensor) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.penalties.rate_penalty`: mean of ``r^2`` over all entries."""
    return penalties.rate_penalty(rates, "mean")


def reference_wiring_cost(weights: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.penalties.wiring_penalty`: ``sum_ij |W_ij| d_ij``."""
    return penalties.wiring_penalty(weights, distances)


def reference_communicability_wiring_cost(weights: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """Lab signature of the communicability-weighted wiring cost of Achterberg et al. (2023):
    ``sum_ij |W_ij| d_ij C_ij`` with ``C`` = :func:`utils.constraints.spatial.communicability` of ``W``."""
    return penalties.wiring_penalty(weights, distances, communicability=spatial.communicability(weights))


def _scalar(got, what: str) -> torch.Tensor:
    expect(isinstance(got, torch.Tensor), f"{what} should return a torch tensor (a scalar), got "
                                          f"{type(got).__name__}")
    expect(got.numel() == 1, f"{what} should return a single number (a scalar tensor), got shape "
                             f"{tuple(got.shape)}")
    return got


def _expect_differentiable(fn, *args, what: str) -> None:
    x = args[0].clone().requires_grad_(True)
    out = _scalar(fn(x, *args[1:]), what)
    expect(out.requires_grad, f"{what} must stay differentiable: use torch operations on the "
                              "tensor (no .item(), .numpy() or .detach())")


@self_check("Exercise 2.1: the L1 weight penalty",
            hint="The penalty charges every weight by its size, whatever its sign, and adds up "
                 "over all entries (not an average, not a square).")
def check_l1_penalty(fn):
    gen = torch.Generator().manual_seed(0)
    for shape in [(3, 3), (10, 10), (4, 7)]:
        w = torch.randn(*shape, generator=gen)
        got = _scalar(fn(w), f"l1_penalty(W of shape {shape})")
        expect_close(got.reshape(()), reference_l1_penalty(w), f"l1_penalty(W of shape {shape})")
    w = torch.tensor([[0.0, -2.0], [1.0, 0.5]])
    expect_close(_scalar(fn(w), "l1_penalty").reshape(()), torch.tensor(3.5),
                 "l1_penalty([[0, -2], [1, 0.5]])")
    _expect_differentiable(fn, torch.randn(5, 5, generator=gen), what="l1_penalty")


@self_check("Exercise 2.2: the L2 rate penalty",
            hint="Which operation makes high rates especially expensive? Then remove the "
                 "dependence on trial length, batch size and number of units.")
def check_rate_penalty(fn):
    gen = torch.Generator().manual_seed(1)
    for shape in [(5, 2, 3), (20, 8, 16)]:
        r = torch.relu(torch.randn(*shape, generator=gen))
        got = _scalar(fn(r), f"rate_penalty(rates of shape {shape})")
        expect(not torch.isclose(got.reshape(()), (r ** 2).sum()) or (r ** 2).sum() == 0,
               "you returned the sum over all entries; average instead (see the exercise text)")
        expect(not torch.isclose(got.reshape(()), r.mean()),
               "you returned the mean rate; the penalty uses the squared rates")
        expect_close(got.reshape(()), reference_rate_penalty(r), f"rate_penalty(rates of shape {shape})")
    _expect_differentiable(fn, torch.rand(4, 3, 2, generator=gen), what="rate_penalty")


@self_check("Exercise 2.3: the wiring cost",
            hint="Each connection costs its strength times its length; an inhibitory (negative) "
                 "connection needs an axon just as long as an excitatory one.")
def check_wiring_cost(fn):
    gen = torch.Generator().manual_seed(2)
    w = torch.tensor([[0.0, -2.0], [1.0, 0.0]])
    d = torch.tensor([[0.0, 3.0], [3.0, 0.0]])
    got = _scalar(fn(w, d), "wiring_cost")
    expect(not torch.isclose(got.reshape(()), torch.tensor(-3.0)),
           "wiring_cost([[0, -2], [1, 0]], d) gave -3: take the magnitude |W_ij| of each weight")
    expect_close(got.reshape(()), torch.tensor(9.0), "wiring_cost([[0, -2], [1, 0]], [[0, 3], [3, 0]])")
    for n in [4, 9]:
        p = torch.rand(n, 2, generator=gen)
        dist = torch.cdist(p, p)
        w = torch.randn(n, n, generator=gen)
        expect_close(_scalar(fn(w, dist), "wiring_cost").reshape(()), reference_wiring_cost(w, dist),
                     f"wiring_cost for {n} units")
    _expect_differentiable(fn, torch.randn(3, 3, generator=gen), torch.rand(3, 3, generator=gen),
                           what="wiring_cost")


@self_check("Exercise 2.4: a clipped gradient-descent step",
            hint="The bound is on the whole update: treat all gradients as one long vector. "
                 "Scaling keeps the direction; only a vector that is too long is shortened. "
                 "In-place updates of parameters must not be recorded by autograd.")
def check_clipped_sgd_step(fn):
    def make(grads):
        ps = []
        for g in grads:
            p = torch.nn.Parameter(torch.ones_like(g))
            p.grad = g.clone()
            ps.append(p)
        return ps

    cases = [([torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])], 0.5, 1.0),   # norm 5 > 1: clip
             ([torch.tensor([0.3, -0.4])], 0.1, 10.0),                          # below: unchanged
             ([torch.randn(4, 4, generator=torch.Generator().manual_seed(3)) * 50,
               torch.randn(3, generator=torch.Generator().manual_seed(4))], 0.01, 2.0)]
    for grads, lr, max_norm in cases:
        mine, ref = make(grads), make(grads)
        norm = fn(mine, lr, max_norm)
        ref_norm = clipping.clipped_sgd_step(ref, lr, max_norm)
        for k, (a, b) in enumerate(zip(mine, ref)):
            expect_close(a.detach(), b.detach(),
                         f"parameter {k} after clipped_sgd_step(lr={lr}, max_norm={max_norm})")
        expect(norm is not None and abs(float(norm) - ref_norm) <= 1e-4 * max(1.0, ref_norm),
               f"clipped_sgd_step should return the gradient norm before clipping, {ref_norm:.4g}; "
               f"got {norm!r}")
    # a parameter without a gradient must be skipped
    p = torch.nn.Parameter(torch.zeros(2))
    q = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.tensor([1.0, 0.0])
    fn([p, q], 0.1, 5.0)
    expect(torch.equal(q.detach(), torch.ones(2)),
           "parameters whose .grad is None must be left unchanged")


@self_check("Exercise 2.5: the communicability-weighted wiring cost",
            hint="Follow the definition step by step: the magnitudes |W|, the strength of every "
                 "unit (what flows into it), the normalised matrix, its matrix exponential "
                 "(torch has one), then the cost. Think about what a unit with no connections "
                 "does to the normalisation.")
def check_communicability_wiring_cost(fn):
    gen = torch.Generator().manual_seed(5)
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    d = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
    got = _scalar(fn(w, d), "communicability_wiring_cost")
    expect_close(got.reshape(()), reference_communicability_wiring_cost(w, d),
                 "communicability_wiring_cost for two units connected both ways")
    for n in [5, 12]:
        p = torch.rand(n, 3, generator=gen)
        dist = torch.cdist(p, p)
        wn = torch.randn(n, n, generator=gen)
        expect_close(_scalar(fn(wn, dist), "communicability_wiring_cost").reshape(()),
                     reference_communicability_wiring_cost(wn, dist),
                     f"communicability_wiring_cost for {n} units", rtol=1e-4)
    zero_row = wn.clone()
    zero_row[0] = 0.0  # unit 0 receives nothing: its strength is zero
    got = _scalar(fn(zero_row, dist), "communicability_wiring_cost")
    expect(bool(torch.isfinite(got).all()), "a unit without inputs (strength 0) gave a cost that is "
                                            "not finite: handle zero strengths")


@self_check("Exercise 2.6: a proximal L1 step",
            hint="Take the task step first. Then ask, for one weight v, which w minimises "
                 "(w - v)^2 / 2 + lr * beta * |w|: sketch it for v above, inside and below the "
                 "interval [-lr*beta, lr*beta]. The answer has a name in the chapter.")
def check_l1_proximal_step(fn):
    w = torch.tensor([[1.0, -0.5], [0.02, -0.01]])
    g = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    got = fn(w, g, 0.1, 0.3)  # threshold 0.03
    expect_close(got, penalties.l1_proximal_step(w, g, 0.1, 0.3),
                 "l1_proximal_step with zero task gradient, lr=0.1, beta=0.3")
    expect(bool(got[1, 0] == 0) and bool(got[1, 1] == 0),
           "weights smaller than lr * beta must become exactly zero, not just small")
    gen = torch.Generator().manual_seed(6)
    w = torch.randn(6, 6, generator=gen)
    g = torch.randn(6, 6, generator=gen)
    expect_close(fn(w, g, 0.05, 2.0), penalties.l1_proximal_step(w, g, 0.05, 2.0),
                 "l1_proximal_step(random W, random gradient, lr=0.05, beta=2)")
