"""Self-checks for Lab 10 (rank-one low-rank network, perceptual decision making): the data
generator, the low-rank forward pass, Gaussian resampling of the connectivity and the
population-averaged gain ``<Phi'>(Delta)``. Each ``check_*`` takes the student's function and
prints one line.

The ``reference_*`` functions have exactly the lab's signatures and are what the lab falls back
on (through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..analysis import meanfield
from ..tasks import lowrank_tasks
from .core import CheckFailure, expect, expect_close, expect_shape, self_check

__all__ = [
    "reference_decision_batch", "reference_lowrank_forward", "reference_resample_connectivity",
    "reference_mean_gain",
    "check_decision_batch", "check_lowrank_forward", "check_resample_connectivity",
    "check_mean_gain",
]


def reference_decision_batch(batch_size: int, generator: torch.Generator | None = None) -> dict:
    """Lab signature of :func:`utils.tasks.lowrank_tasks.decision_batch` (the project's defaults)."""
    return lowrank_tasks.decision_batch(batch_size, generator=generator)


def reference_lowrank_forward(u: torch.Tensor, m: torch.Tensor, n: torch.Tensor, I: torch.Tensor,
                              w: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain Euler loop of the low-rank network from ``x = 0``: returns ``z`` (T, B), ``x`` (T, B, N).

    ``x <- x + alpha (-x + m (n^T tanh(x) / N) + I u_t)``, ``z_t = w . tanh(x) / N``.
    """
    T, B, _ = u.shape
    N = m.shape[0]
    x = u.new_zeros(B, N)
    xs, zs = [], []
    for t in range(T):
        kappa = torch.tanh(x) @ n / N
        x = x + alpha * (-x + kappa @ m.T + u[t] @ I.T)
        xs.append(x)
        zs.append(torch.tanh(x) @ w / N)
    return torch.stack(zs), torch.stack(xs)


def reference_resample_connectivity(C: torch.Tensor, n_units: int,
                                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n_units`` rows from the Gaussian with the mean and covariance of the rows of ``C``."""
    C = torch.as_tensor(C, dtype=torch.float64)
    mean = C.mean(0)
    cov = torch.cov(C.T)
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs * evals.clamp(min=0).sqrt()
    z = torch.randn(n_units, C.shape[1], generator=generator, dtype=torch.float64)
    return (mean + z @ root.T).float()


def reference_mean_gain(delta: float) -> float:
    """Lab signature of :func:`utils.analysis.meanfield.mean_gain` for one value of Delta."""
    return meanfield.mean_gain(float(delta))


@self_check("Exercise 10.1: the decision-task generator",
            hint="inputs = 0.03 * torch.randn(75, B, 1, generator=generator); add the strength "
                 "on steps 5..45 inclusive (inputs[5:46]); draw strengths with torch.randint on "
                 "the list of 10 values; targets = torch.sign(strengths).")
def check_decision_batch(fn):
    B = 2000
    batch = fn(B, generator=torch.Generator().manual_seed(0))
    expect(isinstance(batch, dict), f"return a dict, got {type(batch).__name__}")
    for key in ("inputs", "targets", "strengths"):
        expect(key in batch, f"the dict needs the key {key!r} (it has {sorted(batch)})")
    u = torch.as_tensor(batch["inputs"], dtype=torch.float32)
    s = torch.as_tensor(batch["strengths"], dtype=torch.float32)
    y = torch.as_tensor(batch["targets"], dtype=torch.float32)
    expect_shape(u, (75, B, 1), "inputs")
    expect_shape(s, (B,), "strengths")
    expect_shape(y, (B,), "targets")
    allowed = torch.tensor(lowrank_tasks.DECISION_STRENGTHS)
    dist = (s[:, None] - allowed[None]).abs().min(1).values
    expect(bool((dist < 1e-6).all()), "every strength must be one of +-3.2/100 * {1, 2, 4, 8, 16}")
    expect(len(torch.unique(torch.round(s * 1e6))) == 10,
           "all ten strengths (both signs) should appear in 2000 trials")
    expect(torch.equal(y, torch.sign(s)), "targets must be the sign of each trial's strength")
    noise = u[..., 0].clone()
    noise[5:46] -= s
    expect(abs(noise.std().item() - 0.03) < 0.002,
           f"after removing the stimulus, the noise should have std 0.03, got {noise.std().item():.4f} "
           "(is the stimulus on exactly for 5 <= t <= 45?)")
    signed = (u[..., 0] * torch.sign(s)).mean(1)
    expect(abs(signed[4].item()) < 0.01 and abs(signed[46].item()) < 0.01,
           "there should be no stimulus at t = 4 or t = 46")
    expect(signed[5].item() > 0.15 and signed[45].item() > 0.15,
           "the stimulus must be on at t = 5 and at t = 45 (both ends included)")
    again = fn(B, generator=torch.Generator().manual_seed(0))
    expect(torch.equal(torch.as_tensor(again["inputs"], dtype=torch.float32), u),
           "the same seeded generator must give the same batch: pass generator= to every "
           "torch.randn / torch.randint call")


@self_check("Exercise 10.2: the low-rank forward pass",
            hint="Start from x = zeros(B, N); each step kappa = tanh(x) @ n / N, then "
                 "x = x + alpha * (-x + kappa @ m.T + u[t] @ I.T); record x and z = tanh(x) @ w / N "
                 "after the update. Never build the N x N matrix.")
def check_lowrank_forward(fn):
    g = torch.Generator().manual_seed(1)
    for N, R, T, B in [(30, 1, 12, 4), (25, 2, 8, 3)]:
        m, n = torch.randn(N, R, generator=g), torch.randn(N, R, generator=g)
        I, w = torch.randn(N, 1, generator=g), 4 * torch.randn(N, generator=g)
        u = torch.randn(T, B, 1, generator=g)
        got = fn(u, m, n, I, w, 0.2)
        expect(isinstance(got, tuple) and len(got) == 2, "return the tuple (z, x)")
        z, x = got
        z_ref, x_ref = reference_lowrank_forward(u, m, n, I, w, 0.2)
        expect_close(x, x_ref, f"x for N={N}, rank {R}", atol=1e-4)
        expect_close(z, z_ref, f"z for N={N}, rank {R}", atol=1e-4)


@self_check("Exercise 10.3: resampling the connectivity from a Gaussian",
            hint="mean = C.mean(0), cov = torch.cov(C.T); draw with "
                 "torch.distributions.MultivariateNormal or mean + randn(n, D) @ L.T with "
                 "L = torch.linalg.cholesky(cov). Do not reuse C's rows.")
def check_resample_connectivity(fn):
    g = torch.Generator().manual_seed(2)
    base = torch.randn(300, 4, generator=g, dtype=torch.float64)
    C = torch.stack([base[:, 0], 1.4 * base[:, 0] + base[:, 1], base[:, 2],
                     2.0 * base[:, 0] - base[:, 2] + 3 * base[:, 3]], dim=1) + torch.tensor(
        [0.0, 0.2, 0.0, -0.1], dtype=torch.float64)
    C = C.float()
    out = fn(C, 20000, torch.Generator().manual_seed(0))
    expect_shape(out, (20000, 4), "resample_connectivity(C, 20000, generator)")
    out = torch.as_tensor(out, dtype=torch.float64)
    target_cov = torch.cov(C.double().T)
    expect_close(torch.cov(out.T), target_cov, "the covariance of the resampled rows", atol=0.25, rtol=0.05)
    expect_close(out.mean(0), C.double().mean(0), "the mean of the resampled rows", atol=0.08, rtol=0.0)
    reused = (torch.cdist(out[:500], C.double()).min(1).values < 1e-6).float().mean().item()
    expect(reused < 0.01, "the rows are copies of C's rows (a bootstrap); draw NEW rows from the "
                          "fitted Gaussian instead")
    again = torch.as_tensor(fn(C, 20000, torch.Generator().manual_seed(0)), dtype=torch.float64)
    expect(torch.equal(again, out), "the same seeded generator must give the same draw")


@self_check("Exercise 10.4: the population-averaged gain <Phi'>(Delta)",
            hint="<Phi'>(Delta) = (1/sqrt(2 pi)) * integral of (1 - tanh(Delta z)^2) exp(-z^2/2) dz; "
                 "scipy.integrate.quad over (-inf, inf) or numpy's hermegauss do it. Note the "
                 "Gaussian normalisation is 1/sqrt(2 pi): the project's 1/(2 pi) is a misprint.")
def check_mean_gain(fn):
    for delta in (0.0, 0.3, 1.0, 2.5, 6.0):
        got = fn(delta)
        try:
            val = float(got)
        except (TypeError, ValueError):
            raise CheckFailure(f"mean_gain({delta}) should return a number, got {type(got).__name__}") from None
        expected = reference_mean_gain(delta)
        if delta == 0.0 and abs(val - 1.0 / math.sqrt(2 * math.pi)) < 1e-3:
            raise CheckFailure("mean_gain(0) = 0.399 = 1/sqrt(2 pi): you used the project's 1/(2 pi) "
                               "prefactor; the Gaussian density needs 1/sqrt(2 pi), so that "
                               "mean_gain(0) = tanh'(0) = 1")
        expect(np.isfinite(val) and abs(val - expected) < 1e-4,
               f"mean_gain({delta}) = {val:.6g}, expected {expected:.6g}")
