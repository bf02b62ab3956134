"""Self-checks for Lab 9 (sequences in E/I networks and continual learning): the peak-shift
measurement, the per-trial Fisher diagonal of a small rate network (against a slow reference that
runs one backward pass per trial) and the EWC penalty. The ``reference_*`` functions have the
lab's signatures and take and return plain tensors (so the grader can call them)."""

from __future__ import annotations

import torch

from ..analysis.peak_shifts import peak_shift
from ..learning.continual import ewc_penalty
from ..models.rate import leaky_rnn
from .core import expect, expect_close, expect_shape, self_check

__all__ = ["reference_peak_shift", "reference_fisher_diagonal", "reference_ewc_penalty",
           "check_peak_shift", "check_fisher_diagonal", "check_ewc_penalty", "bumps",
           "fisher_problem"]


def reference_peak_shift(original: torch.Tensor, perturbed: torch.Tensor, dt: float) -> torch.Tensor:
    """Per-output peak shift (ms) of traces (time, n_output): ``t_orig - t_perturbed``, with each
    peak refined by the vertex of the parabola through the largest sample and its neighbours."""
    return peak_shift(original, perturbed, dt).to(torch.float32)


def reference_fisher_diagonal(weight: torch.Tensor, readout: torch.Tensor, drive: torch.Tensor,
                              targets: torch.Tensor, alpha: float
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow reference: for each trial alone, ``ell = 0.5 * sum_{t,k} (y - y*)^2`` with
    ``y = relu-network rates[..., :n_read] @ readout.T`` (rates from :func:`leaky_rnn`), one
    backward pass, squared gradients; the mean over trials for ``weight`` and ``readout``."""
    f_w = torch.zeros_like(weight)
    f_r = torch.zeros_like(readout)
    n_read = readout.shape[1]
    for i in range(drive.shape[1]):
        w = weight.detach().clone().requires_grad_(True)
        r = readout.detach().clone().requires_grad_(True)
        rates = leaky_rnn(drive[:, i:i + 1].detach(), w, None, alpha)
        out = rates[..., :n_read] @ r.t()
        loss = 0.5 * (out - targets[:, i:i + 1]).pow(2).sum()
        g_w, g_r = torch.autograd.grad(loss, [w, r])
        f_w += g_w ** 2
        f_r += g_r ** 2
    n = drive.shape[1]
    return f_w / n, f_r / n


def reference_ewc_penalty(params: dict, anchors: dict, fisher: dict, lam: float) -> torch.Tensor:
    """``lam / 2 * sum_i F_i (theta_i - theta_A_i)^2`` over the names in ``fisher``."""
    return ewc_penalty(params, anchors, fisher, lam)


def bumps(centres, n_steps: int = 40, width: float = 2.5) -> torch.Tensor:
    """Gaussian bumps (time, len(centres)) centred at the given (fractional) steps."""
    t = torch.arange(n_steps, dtype=torch.float32)[:, None]
    return torch.exp(-0.5 * ((t - torch.as_tensor(centres, dtype=torch.float32)) / width) ** 2)


def fisher_problem(seed: int, n_units: int = 6, n_read: int = 4, n_out: int = 2, n_trials: int = 5,
                   n_steps: int = 12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """A small random problem ``(weight, readout, drive, targets, alpha)`` for the Fisher exercise."""
    gen = torch.Generator().manual_seed(seed)
    weight = 0.6 * torch.randn(n_units, n_units, generator=gen) / n_units ** 0.5
    readout = torch.rand(n_out, n_read, generator=gen)
    drive = 0.5 * torch.rand(n_steps, n_trials, n_units, generator=gen) - 0.1
    targets = torch.rand(n_steps, n_trials, n_out, generator=gen)
    return weight, readout, drive, targets, 0.2


@self_check("Exercise 9.1: the peak shift",
            hint="Find each output's largest sample, then place the peak between samples: the vertex "
                 "of the parabola through that sample and its two neighbours. Positive = earlier.")
def check_peak_shift(fn):
    orig = bumps([10.0, 20.0, 30.0])
    pert = bumps([9.0, 21.0, 30.0])
    got = fn(orig, pert, 20.0)
    expect_shape(got, (3,), "peak_shift(original, perturbed, dt=20) for 3 outputs")
    expect(float(torch.as_tensor(got)[0]) > 0,
           "a peak that moves from step 10 to step 9 came earlier: its shift must be positive")
    expect_close(got, reference_peak_shift(orig, pert, 20.0), "whole-step shifts", atol=1e-3)
    pert = bumps([10.4, 19.7, 30.2])
    got = torch.as_tensor(fn(orig, pert, 20.0), dtype=torch.float32)
    expect(bool((got != 0).all()), "shifts smaller than one step come out as 0: refine the peak "
                                   "between samples")
    expect_close(got, reference_peak_shift(orig, pert, 20.0), "sub-step shifts", atol=1e-3)


@self_check("Exercise 9.2: the per-trial Fisher diagonal",
            hint="The Fisher diagonal is the mean over trials of each trial's squared gradient: "
                 "run every trial on its own. Squaring the gradient of the whole batch lets "
                 "trials cancel.")
def check_fisher_diagonal(fn):
    weight, readout, drive, targets, alpha = fisher_problem(0)
    got = fn(weight, readout, drive, targets, alpha)
    expect(isinstance(got, (tuple, list)) and len(got) == 2, "return a tuple (F_weight, F_readout)")
    f_w, f_r = got
    expect_shape(f_w, tuple(weight.shape), "F_weight")
    expect_shape(f_r, tuple(readout.shape), "F_readout")
    ref_w, ref_r = reference_fisher_diagonal(weight, readout, drive, targets, alpha)
    # the typical mistake: the square of the batch gradient
    w = weight.clone().requires_grad_(True)
    r = readout.clone().requires_grad_(True)
    out = leaky_rnn(drive, w, None, alpha)[..., :readout.shape[1]] @ r.t()
    g_w, g_r = torch.autograd.grad(0.5 * (out - targets).pow(2).sum() / drive.shape[1], [w, r])
    expect(not torch.allclose(torch.as_tensor(f_r), g_r ** 2, rtol=1e-3),
           "F_readout is the square of the batch-mean gradient, not the mean of the trials' squares")
    expect_close(f_r, ref_r, "F_readout", rtol=1e-3, atol=1e-7)
    expect_close(f_w, ref_w, "F_weight", rtol=1e-3, atol=1e-7)


@self_check("Exercise 9.3: the EWC penalty",
            hint="Sum F * (theta - theta_A)^2 over every entry of every named parameter, then "
                 "multiply by lam / 2. Keep it a torch expression so that gradients flow.")
def check_ewc_penalty(fn):
    params = {"w": torch.tensor([[1.0, -2.0], [0.5, 0.0]], requires_grad=True),
              "b": torch.tensor([3.0], requires_grad=True)}
    anchors = {"w": torch.tensor([[0.0, -2.0], [1.5, 1.0]]), "b": torch.tensor([1.0])}
    fisher = {"w": torch.tensor([[2.0, 9.0], [1.0, 0.0]]), "b": torch.tensor([0.25])}
    got = fn(params, anchors, fisher, 4.0)
    expect(isinstance(got, torch.Tensor), f"return a torch scalar tensor, got {type(got).__name__}")
    expect_close(got, reference_ewc_penalty(params, anchors, fisher, 4.0), "ewc_penalty(lam=4)")
    expect(got.requires_grad, "the penalty must carry gradients back to the parameters "
                              "(no .item(), no .detach(), no numpy)")
    expect_close(fn(params, anchors, fisher, 0.0), torch.tensor(0.0), "ewc_penalty(lam=0)")
