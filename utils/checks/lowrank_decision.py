"""Self-checks for Lab 10 (rank-one low-rank network, perceptual decision making): the data
generator, the low-rank forward pass, Gaussian resampling of the connectivity and the
population-averaged gain ``<Phi'>(Delta)``. Each ``check_*`` takes the student's function and
prints one line.

The ``reference_*`` functions have exactly the lab's signatures and are what the lab falls back
on (through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import functools
import math
import types
from typing import Any

import numpy as np
import torch

from ..analysis import meanfield
from ..tasks import lowrank_tasks
from ..tasks.batch import Batch
from .core import CheckFailure, expect, expect_close, expect_shape, self_check

__all__ = [
    "reference_find_fixed_points", "reference_pca_plane", "check_find_fixed_points", "check_pca_plane",
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
            hint="Each trial has one strength, drawn from the ten allowed values; the noise is a "
                 "fresh N(0, 0.03^2) number for every time step of every trial; the stimulus adds "
                 "the strength from step 5 to step 45, both included. Every random call needs the "
                 "generator, or a seeded batch cannot be reproduced.")
def check_decision_batch(fn):
    B = 2000
    batch = fn(B, generator=torch.Generator().manual_seed(0))
    expect(isinstance(batch, (dict, Batch)), f"return a dict (or a LowRankBatch), got {type(batch).__name__}")
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
    steps = noise[1:] - noise[:-1]
    expect(abs(steps.std().item() - 0.03 * math.sqrt(2)) < 0.004,
           f"consecutive time steps of a trial should differ by independent noise (std "
           f"0.03 * sqrt(2) = 0.042), got {steps.std().item():.4f}: is the noise drawn once per "
           "trial (or once per batch) instead of anew at every step?")
    across = noise[:, 1:] - noise[:, :-1]
    expect(abs(across.std().item() - 0.03 * math.sqrt(2)) < 0.004,
           "different trials should get different noise at the same time step: is one noise "
           "trace shared by the whole batch?")
    signed = (u[..., 0] * torch.sign(s)).mean(1)
    expect(abs(signed[4].item()) < 0.01 and abs(signed[46].item()) < 0.01,
           "there should be no stimulus at t = 4 or t = 46")
    expect(signed[5].item() > 0.15 and signed[45].item() > 0.15,
           "the stimulus must be on at t = 5 and at t = 45 (both ends included)")
    again = fn(B, generator=torch.Generator().manual_seed(0))
    expect(torch.equal(torch.as_tensor(again["inputs"], dtype=torch.float32), u),
           "the same seeded generator must give the same batch: pass generator= to every "
           "torch.randn / torch.randint call")


class _SquareSpy(torch.Tensor):
    """A tensor that remembers whether any operation on it (or on results computed from it)
    produced an ``(n, n)`` matrix, where ``n`` is the number of units of the current check."""

    n_units: int = 0
    seen: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        for item in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(item, torch.Tensor) and item.dim() >= 2 and \
                    tuple(item.shape[-2:]) == (cls.n_units, cls.n_units):
                cls.seen.append(getattr(func, "__name__", str(func)))
        return out


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.as_subclass(torch.Tensor)
    return value


@self_check("Exercise 10.2: the low-rank forward pass",
            hint="The recurrent input to every unit is m times a few numbers per trial (what n "
                 "reads out of the rates, divided by N): compute those R numbers first and never "
                 "form m n^T. Record x and the readout after each update, starting from x = 0.")
def check_lowrank_forward(fn):
    g = torch.Generator().manual_seed(1)
    for N, R, T, B in [(30, 1, 12, 4), (25, 2, 8, 3)]:
        m, n = torch.randn(N, R, generator=g), torch.randn(N, R, generator=g)
        I, w = torch.randn(N, 1, generator=g), 4 * torch.randn(N, generator=g)
        u = torch.randn(T, B, 1, generator=g)
        _SquareSpy.n_units, _SquareSpy.seen = N, []
        # spy only on a function of this kernel: the grader's proxy sends plain tensors to the
        # student's kernel, where no spy can follow (there the self-check has already run)
        local = isinstance(fn, (types.FunctionType, types.MethodType, functools.partial))
        args = [t.as_subclass(_SquareSpy) if local else t for t in (u, m, n, I, w)]
        got = fn(*args, 0.2)
        expect(not _SquareSpy.seen, f"an N x N matrix ({N} x {N}) was built "
               f"(by {_SquareSpy.seen[0] if _SquareSpy.seen else ''}): the point of low rank is never to form J = m n^T / N; compute kappa = tanh(x) n / N "
               "(R numbers per trial) and then kappa m^T")
        expect(isinstance(got, tuple) and len(got) == 2, "return the tuple (z, x)")
        z, x = (_plain(v) for v in got)
        z_ref, x_ref = reference_lowrank_forward(u, m, n, I, w, 0.2)
        expect_close(x, x_ref, f"x for N={N}, rank {R}", atol=1e-4)
        expect_close(z, z_ref, f"z for N={N}, rank {R}", atol=1e-4)


@self_check("Exercise 10.3: resampling the connectivity from a Gaussian",
            hint="A Gaussian is fixed by a mean and a covariance, both estimated from C's rows. "
                 "Standard normal numbers become such a Gaussian through any matrix L with "
                 "L L^T = cov (which factorisation gives one?). New rows: never resample C's own.")
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
            hint="scipy.integrate.quad over (-inf, inf) is accurate to far better than 1e-4 here. "
                 "A fixed set of nodes (e.g. numpy's hermegauss) is not, for large Delta: the "
                 "integrand is then a peak of width 1/Delta that the nodes step over; a change of "
                 "variable y = Delta z puts the narrow part in the Gaussian instead. And the "
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


def reference_find_fixed_points(stats: dict, v: float) -> list[tuple[float, str]]:
    """Lab signature of :func:`utils.analysis.meanfield.fixed_points` on the reduced circuit's
    flow ``kappa_velocity(kappa, v, stats)`` for ``|kappa| <= 3``: ``[(kappa, stability), ...]``
    sorted by kappa, stability ``"stable"`` or ``"unstable"`` (``"marginal"`` if the slope is 0)."""
    points = meanfield.fixed_points(
        lambda k: meanfield.kappa_velocity(k, float(v), stats), kappa_range=(-3.0, 3.0), n_starts=61)
    return [(p["kappa"], p["stability"]) for p in points]


def reference_pca_plane(x: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``k`` principal components of the rows of ``x`` (S, N): ``components`` (k, N),
    orthonormal rows, and the fraction of the variance each explains (k,)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    centred = x - x.mean(0)
    _, sing, vt = torch.linalg.svd(centred, full_matrices=False)
    return vt[:k], (sing[:k] ** 2) / (sing ** 2).sum()


_FIXED_POINT_CASES = [
    ({**meanfield.PROJECT_RANK1}, 0.0),
    ({**meanfield.PROJECT_RANK1, "sigma_mn": 0.8}, 0.0),
    ({"sigma_mn": 1.25, "sigma_nI": -0.5, "sigma_m": 1.1, "sigma_I": 1.0, "sigma_mI": -0.3}, 0.04),
    ({"sigma_mn": 1.25, "sigma_nI": -0.5, "sigma_m": 1.1, "sigma_I": 1.0, "sigma_mI": -0.3}, 0.5),
]


def _compare_fixed_points(got: Any, stats: dict, v: float) -> None:
    ref = reference_find_fixed_points(stats, v)
    expect(isinstance(got, (list, tuple)), f"return a list of (kappa, stability) pairs, got {type(got).__name__}")
    pairs = [tuple(p) for p in got]
    expect(len(pairs) == len(ref), f"with sigma_mn = {stats['sigma_mn']} and v = {v} the flow has "
           f"{len(ref)} fixed point(s) in [-3, 3], you found {len(pairs)}: start the search from many "
           "points and merge the ones that land on the same kappa")
    for (k, stab), (k_ref, stab_ref) in zip(sorted(pairs, key=lambda p: float(p[0])), ref):
        expect(abs(float(k) - k_ref) < 1e-3, f"fixed point at kappa = {k_ref:+.4f} expected, got {float(k):+.4f} "
               f"(sigma_mn = {stats['sigma_mn']}, v = {v})")
        expect(stab == stab_ref, f"the fixed point at kappa = {k_ref:+.3f} is {stab_ref}, you said {stab!r}: "
               "look at the sign of the slope of d kappa/dt there")


@self_check("Exercise 10.5: the fixed points of the reduced circuit",
            hint="A fixed point is a kappa where d kappa/dt = 0, i.e. a zero minimum of its square: "
                 "one minimisation finds only the minimum nearest to where it starts, so start from "
                 "many kappas. Not every minimum is a zero. Stability is the sign of the slope.")
def check_find_fixed_points(fn):
    for stats, v in _FIXED_POINT_CASES[:3]:
        _compare_fixed_points(fn(dict(stats), v), stats, v)


@self_check("Exercise 10.6: the top principal components",
            hint="PCA looks at how the samples vary around their mean; the components are the "
                 "directions of largest variance (orthonormal), and each explains its variance "
                 "over the total. numpy or torch's SVD of the right matrix gives both.")
def check_pca_plane(fn):
    g = torch.Generator().manual_seed(7)
    basis = torch.linalg.qr(torch.randn(40, 2, generator=g, dtype=torch.float64)).Q
    coords = torch.randn(300, 2, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)
    x = coords @ basis.T + 5.0 + 0.01 * torch.randn(300, 40, generator=g, dtype=torch.float64)
    got = fn(x.float(), 2)
    expect(isinstance(got, (tuple, list)) and len(got) == 2, "return (components, explained)")
    comps = torch.as_tensor(got[0], dtype=torch.float64)
    expl = torch.as_tensor(got[1], dtype=torch.float64)
    expect_shape(comps, (2, 40), "components for k = 2 and N = 40")
    expect_shape(expl, (2,), "explained-variance fractions for k = 2")
    expect_close(comps @ comps.T, torch.eye(2, dtype=torch.float64), "components @ components.T "
                 "(orthonormal rows)", atol=1e-4)
    ref_comps, ref_expl = reference_pca_plane(x, 2)
    expect_close(expl, ref_expl, "the fractions of variance explained (did you subtract the mean "
                 "over samples? divide by the TOTAL variance?)", atol=1e-4)
    expect_close((comps @ ref_comps.T).abs(), torch.eye(2, dtype=torch.float64),
                 "the components (up to sign)", atol=1e-3)
