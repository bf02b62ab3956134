"""Self-checks for Lab 2 (the cost function): the L1 weight penalty, the L2 rate penalty, the
wiring cost and a clipped gradient-descent step. Each ``check_*`` takes the student's function and
prints one line.

The ``reference_*`` functions have exactly the lab's signatures and are what the lab falls back
on (through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import torch

from ..constraints import clipping, penalties
from .core import expect, expect_close, self_check

__all__ = [
    "reference_l1_penalty", "reference_rate_penalty", "reference_wiring_cost",
    "reference_clipped_sgd_step",
    "check_l1_penalty", "check_rate_penalty", "check_wiring_cost", "check_clipped_sgd_step",
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


def reference_clipped_sgd_step(params, lr: float, max_norm: float) -> float:
    """Lab signature of :func:`utils.clipping.clipped_sgd_step`."""
    return clipping.clipped_sgd_step(params, lr, max_norm)


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
            hint="Sum the absolute values of all entries: weights.abs().sum(). Not the mean, "
                 "not the square.")
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
            hint="Square every rate and average over time, trials and units: rates.pow(2).mean(). "
                 "This is the lecture's sum over t and i divided by T * N (and averaged over trials).")
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
            hint="Multiply the weight magnitudes by the distances elementwise and sum: "
                 "(weights.abs() * distances).sum(). Negative (inhibitory) weights cost too.")
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
            hint="Compute ONE norm over all gradients together, sqrt(sum_p (p.grad**2).sum()); if "
                 "it exceeds max_norm, scale every gradient by max_norm / norm; then "
                 "p -= lr * grad inside torch.no_grad(). Return the norm before clipping.")
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
        ref_norm = reference_clipped_sgd_step(ref, lr, max_norm)
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
