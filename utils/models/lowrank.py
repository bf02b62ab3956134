"""Low-rank recurrent networks (Part IV, after Dubreuil et al. 2022 and Mastrogiuseppe & Ostojic 2018).

The network has ``N`` rate units with pre-activations ``x`` and the dynamics

.. math::

    \\tau \\frac{dx_i}{dt} = -x_i + \\sum_j J_{ij}\\,\\phi(x_j) + I_i u(t), \\qquad
    J = \\frac{1}{N} m n^T, \\qquad \\phi = \\tanh,

discretised with forward Euler (``alpha = dt / tau``), and the readout
``z(t) = (1/N) sum_i w_i phi(x_i(t))``. The left and right connectivity vectors ``m`` and ``n``
(shape (N, R)) are trained; the input vectors ``I`` (N, n_input) and the readout ``w`` (N,) are
fixed.

Why it is fast: starting from ``x = 0``, the state always lies in the span of the columns of ``m``
and ``I``: ``x_t = m K_t + I V_t``. ``V`` is the input low-pass filtered with the time constant
``tau`` (computed once for all steps), and only the R latent numbers ``K`` per trial are updated
step by step: ``K_{t+1} = (1 - alpha) K_t + alpha kappa_t`` with ``kappa_t = n^T phi(x_t) / N``.
The ``N x N`` matrix ``J`` is never formed; a step costs O(N R B). The time loop runs inside
:class:`LowRankFunction`, whose backward pass is written by hand (checked with
:func:`torch.autograd.gradcheck` in the tests).

Tensors are time-major like the rest of :mod:`utils`: inputs (T, B, n_input), outputs (T, B).

The tasks are in :mod:`utils.tasks.lowrank_tasks`, the connectivity statistics in
:mod:`utils.analysis.lowrank_stats`. Introduced in chapter 10.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..seeding import one_thread
from ..validation import check_int, check_real, check_tensor_shape
from .base import check_loaded_buffers, finite, set_interface_sizes

__all__ = ["LowRankFunction", "LowRankRNN"]






class LowRankFunction(torch.autograd.Function):
    """The latent time loop of a low-rank tanh network, with a hand-written backward pass.

    Inputs: ``drive`` (T, B, N), the input part of the state at each step (``I V_{t+1}``);
    ``m``, ``n`` (N, R); ``alpha`` (float). With ``K_0 = 0`` and ``kappa_0 = 0``, for t = 0..T-1::

        K_{t+1} = (1 - alpha) K_t + alpha kappa_t
        r_{t+1} = tanh(drive_t + K_{t+1} m^T)
        kappa_{t+1} = r_{t+1} n / N

    Outputs: rates ``r`` (T, B, N) and latents ``K`` (T, B, R) (entry t belongs to step t+1).
    """

    @staticmethod
    def forward(ctx, drive: torch.Tensor, m: torch.Tensor, n: torch.Tensor,
                alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, N = drive.shape
        R = m.shape[1]
        rs = torch.empty_like(drive)
        ks = drive.new_empty(T, B, R)
        m_t = m.t().contiguous()
        n_scaled = n * (alpha / N)  # alpha * kappa, directly
        k = drive.new_zeros(B, R)
        a_kappa = drive.new_zeros(B, R)
        with one_thread():
            for t in range(T):
                k = torch.add(a_kappa, k, alpha=1.0 - alpha, out=ks[t])
                r = torch.tanh(torch.addmm(drive[t], k, m_t), out=rs[t])
                a_kappa = torch.mm(r, n_scaled)
        ctx.save_for_backward(m, n, rs, ks)
        ctx.alpha = alpha
        return rs, ks

    @staticmethod
    def backward(ctx, grad_rs: torch.Tensor, grad_ks: torch.Tensor):
        m, n, rs, ks = ctx.saved_tensors
        alpha = ctx.alpha
        T, B, N = rs.shape
        R = m.shape[1]
        if grad_rs is None:
            grad_rs = torch.zeros_like(rs)
        if grad_ks is None:
            grad_ks = torch.zeros_like(ks)
        dphi = 1.0 - rs * rs
        n_t = (n * (alpha / N)).t().contiguous()  # from g(K_{t+2}) to g(r_{t+1})
        gxs = torch.empty_like(rs)
        gks = rs.new_empty(T, B, R)
        gk_next = rs.new_zeros(B, R)  # gradient w.r.t. K_{t+2}
        with one_thread():
            for t in range(T - 1, -1, -1):
                gr = torch.addmm(grad_rs[t], gk_next, n_t)
                gx = torch.mul(gr, dphi[t], out=gxs[t])
                gk_next = torch.addmm(grad_ks[t], gx, m, out=gks[t]).add_(gk_next, alpha=1.0 - alpha)
        grad_drive = gxs if ctx.needs_input_grad[0] else None
        grad_m = grad_n = None
        if ctx.needs_input_grad[1]:
            grad_m = gxs.reshape(-1, N).t() @ ks.reshape(-1, R)
        if ctx.needs_input_grad[2]:
            # kappa_{t+1} = r_{t+1} n / N feeds K_{t+2}; the last step's kappa is unused.
            grad_n = (alpha / N) * (rs[:-1].reshape(-1, N).t() @ gks[1:].reshape(-1, R))
        return grad_drive, grad_m, grad_n, None


class LowRankRNN(nn.Module):
    """Rank-R tanh network with fixed input and readout vectors (chapters 10-11; Dubreuil et al. 2022).

    Args:
        n_units: number of units N (>= 2).
        rank: rank R of ``J = m n^T / N`` (>= 1).
        n_input: number of input channels (columns of ``I``).
        tau: neuronal time constant (ms). dt: Euler step (ms), ``0 < dt <= tau``.
        w_std: standard deviation of the fixed readout vector ``w``. 4.0 is the scale used in
            Dubreuil et al.'s code; 1.0 is the project's literal N(0, 1), with which
            ``|z| <= (1/N) sum_i |w_i| ~ E|w| = 0.80`` and targets of +-1 cannot be reached.
        seed: seed of the initial ``m``, ``n`` and of the fixed ``I`` and ``w``.

    Parameters ``m``, ``n`` (N, R) are trained; buffers ``I`` (N, n_input) and ``w`` (N,) are
    fixed. All are drawn from N(0, 1), except ``w`` from N(0, w_std^2).

    ``forward(u)`` takes inputs (T, B, n_input) and returns ``(z, x)``: the readout (T, B) and
    the pre-activations (T, B, N) after each Euler step (the state starts at ``x = 0``; step t
    uses input ``u[t]``).
    """

    def __init__(self, n_units: int = 128, rank: int = 1, n_input: int = 1, *, tau: float = 100.0,
                 dt: float = 20.0, w_std: float = 4.0, seed: int = 0) -> None:
        super().__init__()
        # one readout, z (the forward pass returns it as (T, B))
        set_interface_sizes(self, n_input, n_units, 1, tau=tau, dt=dt)
        self.rank = check_int("rank", rank, min_value=1, max_value=self.n_units)
        self.w_std = check_real("w_std", w_std, low=0.0, low_open=True)
        seed = check_int("seed", seed, min_value=0, max_value=2**63 - 1)
        g = torch.Generator().manual_seed(seed)
        N, R = self.n_units, self.rank
        self.m = nn.Parameter(torch.randn(N, R, generator=g))
        self.n = nn.Parameter(torch.randn(N, R, generator=g))
        self.register_buffer("I", torch.randn(N, self.n_input, generator=g))
        self.register_buffer("w", self.w_std * torch.randn(N, generator=g))

    @property
    def alpha(self) -> float:
        """Euler factor ``dt / tau``."""
        return self.dt / self.tau

    def extra_repr(self) -> str:
        return (f"n_units={self.n_units}, rank={self.rank}, n_input={self.n_input}, "
                f"tau={self.tau:g}, dt={self.dt:g}, w_std={self.w_std:g}")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        check_loaded_buffers(state_dict, prefix, {"I": finite, "w": finite})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def recurrent_weights(self) -> torch.Tensor:
        """The full matrix ``J = m n^T / N`` (N, N), for inspection only; the dynamics never form it."""
        return self.m @ self.n.t() / self.n_units

    def _check_u(self, u: Any) -> torch.Tensor:
        if not isinstance(u, torch.Tensor) or u.dim() != 3 or u.shape[-1] != self.n_input:
            got = tuple(u.shape) if hasattr(u, "shape") else type(u).__name__
            raise ValueError(f"u must be a tensor of shape (time, batch, {self.n_input}), got {got}")
        if u.shape[0] < 1 or u.shape[1] < 1:
            raise ValueError(f"u must have at least one time step and one trial, got {tuple(u.shape)}")
        return u.to(self.m.dtype)

    def filtered_input(self, u: torch.Tensor) -> torch.Tensor:
        """``V`` (T, B, n_input): the input low-passed with ``tau`` (``V_{t+1} = (1-a) V_t + a u_t``).

        Entry t is the value after step t, matching the states returned by :meth:`forward`.
        """
        u = self._check_u(u)
        T, a = u.shape[0], self.alpha
        idx = torch.arange(T)
        lag = (idx[:, None] - idx[None, :]).to(u.dtype)
        kernel = torch.where(lag >= 0, a * (1.0 - a) ** lag.clamp(min=0), torch.zeros_like(lag))
        return torch.einsum("ts,sbi->tbi", kernel, u)

    def simulate(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network and return every quantity: ``z`` (T, B), ``x`` and ``r`` (T, B, N),
        the exact latent coordinates ``K`` (T, B, R) and ``v`` (T, B, n_input) with
        ``x = K m^T + v I^T``."""
        v = self.filtered_input(u)
        drive = v @ self.I.t()
        rs, ks = LowRankFunction.apply(drive, self.m, self.n, self.alpha)
        x = drive + ks @ self.m.t()
        z = rs @ self.w / self.n_units
        return {"z": z, "x": x, "r": rs, "K": ks, "v": v}

    def output(self, u: torch.Tensor) -> torch.Tensor:
        """Only the readout ``z`` (T, B): skips building the (T, B, N) states of :meth:`forward`."""
        v = self.filtered_input(u)
        rs, _ = LowRankFunction.apply(v @ self.I.t(), self.m, self.n, self.alpha)
        return rs @ self.w / self.n_units

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.filtered_input(u)
        drive = v @ self.I.t()
        rs, ks = LowRankFunction.apply(drive, self.m, self.n, self.alpha)
        z = rs @ self.w / self.n_units
        return z, drive + ks @ self.m.t()

    def step(self, x: torch.Tensor, u_t: torch.Tensor) -> torch.Tensor:
        """One plain Euler step ``x + alpha (-x + J tanh(x) + I u_t)`` for states x (B, N), u_t (B, n_input).

        The reference for the lab's forward pass and for the tests; :meth:`forward` is faster.
        """
        check_tensor_shape("x", x, (None, self.n_units))
        check_tensor_shape("u_t", u_t, (x.shape[0], self.n_input))
        kappa = torch.tanh(x) @ self.n / self.n_units
        return x + self.alpha * (-x + kappa @ self.m.t() + u_t @ self.I.t())






