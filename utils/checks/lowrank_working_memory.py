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
from ..tasks import lowrank_tasks
from ..tasks.batch import Batch
from ..tasks.curricula import DelayCurriculum
from ..models import lowrank
from .core import expect, expect_close, expect_shape, self_check

__all__ = [
    "reference_curriculum_batch", "check_curriculum_batch",
    "reference_exact_overlap_draw", "check_exact_overlap_draw",
    "reference_project_latents", "reference_effective_circuit",
    "check_project_latents", "check_effective_circuit",
]

_SIGMA_KEYS = ("sigma_n1m1", "sigma_n2m2", "sigma_n1I", "sigma_n2I", "sigma_m1w", "sigma_m2w")


def reference_project_latents(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Lab signature of :func:`utils.analysis.lowrank_stats.latents` (projection):
    ``kappa_r = x . m_r / |m_r|^2``, with the arguments in the exercise's order."""
    return lowrank_stats.latents(torch.as_tensor(m, dtype=torch.float32),
                                 torch.as_tensor(x, dtype=torch.float32), method="projection")


def reference_effective_circuit(u: torch.Tensor, sigmas: Mapping[str, float], alpha: float
                                ) -> tuple[np.ndarray, np.ndarray]:
    """Lab signature of the project's 2-D effective circuit (:func:`utils.analysis.effective_circuit.simulate_circuit`
    on the diagonal circuit).

    ``sigmas`` holds ``sigma_n1m1, sigma_n2m2, sigma_n1I, sigma_n2I, sigma_m1w, sigma_m2w`` and
    optionally the standard deviations ``sigma_m1, sigma_m2, sigma_I`` (default 1). Returns
    ``kappa`` (T, B, 2) and ``z`` (T, B).
    """
    s = dict(sigmas)
    circuit = ec.EffectiveCircuit(
        sigma_nm=np.diag([s["sigma_n1m1"], s["sigma_n2m2"]]),
        sigma_nI=[s["sigma_n1I"], s["sigma_n2I"]],
        sigma_mw=[s["sigma_m1w"], s["sigma_m2w"]],
        sigma_mm=np.diag([s.get("sigma_m1", 1.0) ** 2, s.get("sigma_m2", 1.0) ** 2]),
        sigma_I2=s.get("sigma_I", 1.0) ** 2, tau=1.0, dt=float(alpha))
    traj = ec.simulate_circuit(circuit, u)
    return traj.kappa, traj.z


def reference_curriculum_batch(batch_size: int, delay: int, generator: torch.Generator | None = None
                               ) -> dict:
    """Lab signature of one batch of :class:`utils.tasks.DelayCurriculum`: working-memory trials
    with the first stimulus at steps 5-10 and the 11-step second stimulus ``delay`` steps later."""
    return lowrank_tasks.working_memory_batch(batch_size, generator=generator,
                                              **DelayCurriculum(1).timing(delay))


def reference_exact_overlap_draw(C: torch.Tensor, n_units: int,
                                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``n_units`` fresh Gaussian rows whose mean and second moments (1/n) sum_i rows equal
    those of ``C``'s rows exactly (the whitened draw of :func:`utils.analysis.lowrank_stats.resample`)."""
    C = torch.as_tensor(C, dtype=torch.float64)
    mean = C.mean(0)
    cov = (C - mean).t() @ (C - mean) / C.shape[0]
    z = torch.randn(n_units, C.shape[1], generator=generator, dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.t() @ z / n_units)).t()
    return (mean + z @ torch.linalg.cholesky(cov).t()).float()


@self_check("Exercise 11.1: a batch of the delay curriculum",
            hint="Keep the first stimulus where the full task has it and move everything after it: "
                 "the second stimulus keeps its length (11 steps) and starts `delay` steps after "
                 "the first one ends, and the report follows it. Which working_memory_batch "
                 "arguments say where the second stimulus is?")
def check_curriculum_batch(fn):
    for delay, batch_size in [(49, 64), (0, 16), (20, 8)]:
        batch = fn(batch_size, delay, torch.Generator().manual_seed(delay))
        expect(isinstance(batch, (dict, Batch)), f"return a dict (or a WorkingMemoryBatch), got "
               f"{type(batch).__name__}")
        for key in ("inputs", "targets", "f1", "f2"):
            expect(key in batch, f"the batch needs the key {key!r} (it has {sorted(batch)})")
        ref = reference_curriculum_batch(batch_size, delay, torch.Generator().manual_seed(delay))
        u = torch.as_tensor(batch["inputs"], dtype=torch.float32)
        expect_shape(u, tuple(ref["inputs"].shape), f"inputs for delay {delay}: the trial has "
                     f"{ref['inputs'].shape[0]} steps (11 + delay + 11 + 5)")
        f1 = torch.as_tensor(batch["f1"], dtype=torch.float32)
        f2 = torch.as_tensor(batch["f2"], dtype=torch.float32)
        on = (u[..., 0] != 0).float().mean(1)
        ref_on = (ref["inputs"][..., 0] != 0).float().mean(1)
        mid = (f1 != 22) & (f2 != 22)
        expect(bool(mid.any()), "f1 and f2 must be drawn from the seven frequencies")
        expect(torch.equal(on > 0.5, ref_on > 0.5),
               f"with delay {delay} the stimuli must be on at steps 5-10 and "
               f"{11 + delay}-{21 + delay}, and nowhere else")
        expect_close(torch.as_tensor(batch["targets"], dtype=torch.float32), (f1 - f2) / 24.0,
                     f"targets (f1 - f2) / 24 for delay {delay}")
        again = fn(batch_size, delay, torch.Generator().manual_seed(delay))
        expect(torch.equal(torch.as_tensor(again["inputs"], dtype=torch.float32), u),
               "the same seeded generator must give the same batch")


@self_check("Exercise 11.3: an exact-overlap draw",
            hint="Draw standard normal rows, then make THEIR sample mean exactly 0 and their "
                 "sample covariance exactly the identity (subtract the mean; undo the covariance "
                 "with the inverse of its Cholesky factor) before you shape them like C.")
def check_exact_overlap_draw(fn):
    g = torch.Generator().manual_seed(3)
    base = torch.randn(200, 6, generator=g, dtype=torch.float64)
    C = (base @ torch.randn(6, 6, generator=g, dtype=torch.float64) + 0.3).float()
    for n_units in (128, 512):
        out = fn(C, n_units, torch.Generator().manual_seed(n_units))
        expect_shape(out, (n_units, 6), f"exact_overlap_draw(C, {n_units}, generator)")
        out = torch.as_tensor(out, dtype=torch.float64)
        Cd = C.double()
        expect_close(out.mean(0), Cd.mean(0), f"the mean of the {n_units} new rows", atol=1e-3, rtol=0)
        expect_close(out.t() @ out / n_units, Cd.t() @ Cd / 200,
                     f"the overlaps (1/n) sum_i a_i b_i of the {n_units} new rows (normalise by n, "
                     "not n - 1)", atol=2e-3, rtol=1e-4)
        reused = (torch.cdist(out[:50], Cd).min(1).values < 1e-6).float().mean().item()
        expect(reused < 0.05, "the rows are copies of C's rows: draw NEW rows")
    a = torch.as_tensor(fn(C, 300, torch.Generator().manual_seed(1)))
    b = torch.as_tensor(fn(C, 300, torch.Generator().manual_seed(2)))
    expect(not torch.allclose(a, b), "different generators must give different draws")


@self_check("Exercise 11.2: latent variables by projection",
            hint="kappa_r is the coordinate of x along m_r that a projection gives: the dot product "
                 "with m_r, scaled so that x = m_r gives exactly 1. Work on all (T, B) at once.")
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


@self_check("Exercise 11.4: the two-dimensional effective circuit",
            hint="Follow the four steps of the exercise in their order: the latents move with the "
                 "gain and the filtered input of the state BEFORE the step, the filtered input moves "
                 "after them, and the readout uses the gain of the state AFTER the step. Missing "
                 "standard deviations are 1.")
def check_effective_circuit(fn):
    u = np.zeros((40, 4))
    u[5:11] = np.array([-0.5, 0.5, 0.1, 0.0])
    u[25:31] = np.array([0.5, -0.5, 0.1, 0.3])
    cases = [dict(ec.PROJECT_WM_SIGMAS),
             {"sigma_n1m1": 1.3, "sigma_n2m2": 0.4, "sigma_n1I": 1.0, "sigma_n2I": -1.5,
              "sigma_m1w": 2.0, "sigma_m2w": 1.0, "sigma_m1": 1.5, "sigma_m2": 0.7, "sigma_I": 1.2}]
    for sigmas in cases:
        got = fn(torch.tensor(u, dtype=torch.float32), dict(sigmas), 0.2)
        expect(isinstance(got, tuple) and len(got) == 2, "return a tuple (kappa, z)")
        kappa, z = got
        k_ref, z_ref = reference_effective_circuit(u, sigmas, 0.2)
        expect_shape(kappa, k_ref.shape, "kappa")
        expect_shape(z, z_ref.shape, "z")
        expect_close(kappa, k_ref, f"kappa with sigmas {sigmas}", atol=1e-4, rtol=1e-3)
        expect_close(z, z_ref, f"z with sigmas {sigmas}", atol=1e-4, rtol=1e-3)
