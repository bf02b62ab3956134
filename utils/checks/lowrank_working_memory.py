"""Self-checks for Lab 11 (rank-2 parametric working memory): the rank-R forward pass, the latent
projection and the two-dimensional effective circuit.

The ``reference_*`` functions have exactly the lab's signatures and are what the lab falls back
on (through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from ..analysis import effective_circuit as ec
from ..analysis import lowrank_stats
from ..models import lowrank
from .core import expect, expect_close, expect_shape, self_check

__all__ = [
    "reference_lowrank_forward", "reference_project_latents", "reference_effective_circuit",
    "check_lowrank_forward", "check_project_latents", "check_effective_circuit",
]

_SIGMA_KEYS = ("n1m1", "n2m2", "n1I", "n2I", "m1w", "m2w")


def _model_with(m: torch.Tensor, n: torch.Tensor, I: torch.Tensor, w: torch.Tensor,
                alpha: float) -> lowrank.LowRankRNN:
    m = torch.as_tensor(m, dtype=torch.float32)
    m = m[:, None] if m.dim() == 1 else m
    model = lowrank.LowRankRNN(m.shape[0], m.shape[1], 1, tau=1.0, dt=float(alpha))
    with torch.no_grad():
        model.m.copy_(m)
        model.n.copy_(torch.as_tensor(n, dtype=torch.float32).reshape(m.shape))
        model.I.copy_(torch.as_tensor(I, dtype=torch.float32).reshape(-1, 1))
        model.w.copy_(torch.as_tensor(w, dtype=torch.float32).reshape(-1))
    return model


def reference_lowrank_forward(u: torch.Tensor, m: torch.Tensor, n: torch.Tensor, I: torch.Tensor,
                              w: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lab signature of :class:`utils.models.lowrank.LowRankRNN`'s forward pass for given vectors.

    ``u`` (T, B); ``m``, ``n`` (N, R); ``I``, ``w`` (N,). Returns ``z`` (T, B) and ``x``
    (T, B, N), with ``x`` starting at 0 and ``x_t = x_{t-1} + alpha (-x_{t-1} + m n^T
    tanh(x_{t-1}) / N + I u_t)``, ``z_t = w . tanh(x_t) / N``.
    """
    model = _model_with(m, n, I, w, alpha)
    with torch.no_grad():
        return model(torch.as_tensor(u, dtype=torch.float32)[..., None])


def reference_project_latents(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Lab signature of :func:`utils.analysis.lowrank_stats.latents` (projection):
    ``kappa_r = x . m_r / |m_r|^2``, with the arguments in the exercise's order."""
    return lowrank_stats.latents(torch.as_tensor(m, dtype=torch.float32),
                                 torch.as_tensor(x, dtype=torch.float32), method="projection")


def reference_effective_circuit(u: torch.Tensor, sigmas: Mapping[str, float], alpha: float
                                ) -> tuple[np.ndarray, np.ndarray]:
    """Lab signature of the project's 2-D effective circuit (:func:`utils.analysis.effective_circuit.simulate_circuit`
    on the diagonal circuit).

    ``sigmas`` holds ``n1m1, n2m2, n1I, n2I, m1w, m2w`` and optionally the standard deviations
    ``m1, m2, I`` (default 1). Returns ``kappa`` (T, B, 2) and ``z`` (T, B).
    """
    s = dict(sigmas)
    circuit = ec.EffectiveCircuit(
        sigma_nm=np.diag([s["n1m1"], s["n2m2"]]), sigma_nI=[s["n1I"], s["n2I"]],
        sigma_mw=[s["m1w"], s["m2w"]], sigma_mm=np.diag([s.get("m1", 1.0) ** 2, s.get("m2", 1.0) ** 2]),
        sigma_I2=s.get("I", 1.0) ** 2, tau=1.0, dt=float(alpha))
    traj = ec.simulate_circuit(circuit, u)
    return traj.kappa, traj.z


def _example_vectors(n_units: int, rank: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n_units, rank, generator=g)
    n = 1.5 * torch.randn(n_units, rank, generator=g) + m  # overlaps, so the recurrence matters
    I = torch.randn(n_units, generator=g)
    w = 4.0 * torch.randn(n_units, generator=g)
    u = torch.zeros(30, 3)
    u[3:8] = torch.tensor([0.5, -0.25, 0.1])
    u[15:20] = torch.tensor([-0.5, 0.4, 0.0])
    return u, m, n, I, w


@self_check("Exercise 11.1: the rank-R forward pass",
            hint="Start from x = 0 (shape (B, N)). At each step t: kappa = tanh(x) @ n / N "
                 "(shape (B, R)), then x = x + alpha * (-x + kappa @ m.T + u[t][:, None] * I); "
                 "store x, and z = tanh(x) @ w / N. Return z (T, B) and x (T, B, N).")
def check_lowrank_forward(fn):
    for n_units, rank, seed in [(16, 1, 0), (32, 2, 1), (24, 3, 2)]:
        u, m, n, I, w = _example_vectors(n_units, rank, seed)
        got = fn(u, m, n, I, w, 0.2)
        expect(isinstance(got, tuple) and len(got) == 2, "return a tuple (z, x)")
        z, x = got
        z_ref, x_ref = reference_lowrank_forward(u, m, n, I, w, 0.2)
        expect_shape(x, tuple(x_ref.shape), f"x for N={n_units}, R={rank}")
        expect_shape(z, tuple(z_ref.shape), f"z for N={n_units}, R={rank}")
        expect_close(x, x_ref, f"x for N={n_units}, R={rank}", atol=1e-4)
        expect_close(z, z_ref, f"z for N={n_units}, R={rank}", atol=1e-4)


@self_check("Exercise 11.2: latent variables by projection",
            hint="kappa_r(t) = x(t) . m_r / (m_r . m_r): one matrix product x @ m (T, B, R), "
                 "divided by the squared norm of each column of m, (m * m).sum(0).")
def check_project_latents(fn):
    g = torch.Generator().manual_seed(5)
    m = torch.randn(40, 2, generator=g)
    kappa = torch.randn(6, 3, 2, generator=g)
    x = kappa @ m.t()
    got = fn(x, m)
    expect_shape(got, (6, 3, 2), "project_latents(x (6, 3, 40), m (40, 2))")
    expect_close(got, reference_project_latents(x, m), "project_latents(x, m)", atol=1e-4)
    orth = torch.linalg.qr(torch.randn(40, 2, generator=g)).Q * 3.0  # orthogonal columns
    expect_close(fn(kappa @ orth.t(), orth), kappa, "kappa recovered from orthogonal m", atol=1e-4)


@self_check("Exercise 11.3: the two-dimensional effective circuit",
            hint="Start from kappa = 0 and v = 0. Each step: Delta = sqrt(s_m1^2 k1^2 + "
                 "s_m2^2 k2^2 + s_I^2 v^2), g = mean_gain(Delta) (utils.analysis.meanfield); k_r += alpha * (-k_r + g * "
                 "(s_nrmr * k_r + s_nrI * v)) using the OLD v; then v += alpha * (u[t] - v); "
                 "z = g' * (s_m1w k1 + s_m2w k2) with g' the gain of the NEW state.")
def check_effective_circuit(fn):
    u = np.zeros((40, 4))
    u[5:11] = np.array([-0.5, 0.5, 0.1, 0.0])
    u[25:31] = np.array([0.5, -0.5, 0.1, 0.3])
    cases = [dict(ec.PAPER_WM_SIGMAS),
             {"n1m1": 1.3, "n2m2": 0.4, "n1I": 1.0, "n2I": -1.5, "m1w": 2.0, "m2w": 1.0,
              "m1": 1.5, "m2": 0.7, "I": 1.2}]
    for sigmas in cases:
        got = fn(torch.tensor(u, dtype=torch.float32), dict(sigmas), 0.2)
        expect(isinstance(got, tuple) and len(got) == 2, "return a tuple (kappa, z)")
        kappa, z = got
        k_ref, z_ref = reference_effective_circuit(u, sigmas, 0.2)
        expect_shape(kappa, k_ref.shape, "kappa")
        expect_shape(z, z_ref.shape, "z")
        expect_close(kappa, k_ref, f"kappa with sigmas {sigmas}", atol=1e-4, rtol=1e-3)
        expect_close(z, z_ref, f"z with sigmas {sigmas}", atol=1e-4, rtol=1e-3)
