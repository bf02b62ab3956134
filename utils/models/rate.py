"""Recurrent network models of the course.

:class:`RateRNN` is a continuous-time rate network discretised with forward Euler,

.. math::

    x_t = (1 - \\alpha) x_{t-1} + \\alpha (W r_{t-1} + W_{in} u_t + b) + \\sqrt{2\\alpha}\\,\\sigma_{rec}\\,\\xi_t,
    \\qquad r_t = [x_t]_+,\\qquad \\alpha = dt / \\tau,

with optional Dale's law (``W = ([W+]_+ \\odot M) D``, no self-connections, readout from the
excitatory units only), an optional fixed sparsity mask, and an optional two-layer "dendritic"
input stage (each unit a small two-layer network, chapter 1; Poirazi et al. 2003).

The time loop runs inside :class:`LeakyRNNFunction`, a custom autograd function whose backward
pass is written by hand (a few batched tensor operations per time step, checked against autograd
with :func:`torch.autograd.gradcheck` in the tests). It is about twice as fast as letting autograd
record every step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..constraints.masks import dale_signs, effective_weights, n_excitatory, sparsity_mask
from .base import (check_loaded_buffers, fixed_buffer, positive_finite, set_interface_sizes,
                   zeros_and_ones)
from .dendritic import DendriticInput
from ..validation import check_bool, check_choice, check_real, check_tensor_shape

__all__ = ["LeakyRNNFunction", "leaky_rnn", "constrained_step", "RateRNN", "count_constraint_violations"]


def leaky_forward_states(drive: torch.Tensor, weight: torch.Tensor, x0: torch.Tensor,
                         alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The time loop of the course's fast networks, written once: ``x_t = (1-a) x_{t-1} +
    a W relu(x_{t-1}) + drive_t``, returning the states ``xs`` and the rates ``relu(xs)``.

    One network: ``drive`` (T, B, N), ``weight`` (N, N), ``x0`` (B, N). A stack of K networks
    (chapters 8-9): ``drive`` (T, K, B, N), ``weight`` (K, N, N), ``x0`` (K, B, N). One fused
    matrix product per step (``addmm_`` / ``baddbmm_``), written in place into preallocated
    tensors. Used by :class:`LeakyRNNFunction`, the ensemble and the stacked E/I networks.
    """
    batched = weight.dim() == 3
    xs = torch.empty_like(drive)
    rs = torch.empty_like(drive)
    w_t = (weight.transpose(1, 2) if batched else weight.t()) * alpha
    x_prev = x0
    r_prev = torch.relu(x0)
    for t in range(drive.shape[0]):
        xt = xs[t]
        torch.add(drive[t], x_prev, alpha=1.0 - alpha, out=xt)
        if batched:
            xt.baddbmm_(r_prev, w_t)
        else:
            xt.addmm_(r_prev, w_t)
        torch.clamp(xt, min=0.0, out=rs[t])
        x_prev, r_prev = xt, rs[t]
    return xs, rs


def leaky_backward_states(grad_rs: torch.Tensor, xs: torch.Tensor, weight: torch.Tensor,
                          alpha: float) -> torch.Tensor:
    """Backward through the time loop of :func:`leaky_forward_states`: ``dE/dx_t`` for every
    step (the gradient with respect to the drive), from ``grad_rs = dE/drelu(x_t)`` (one network
    or a stack, as there)."""
    batched = weight.dim() == 3
    active = (xs > 0).to(xs.dtype)
    w_a = weight * alpha
    gxs = torch.empty_like(xs)
    g_next = None
    for t in range(xs.shape[0] - 1, -1, -1):
        if g_next is None:
            gx = grad_rs[t] * active[t]
        else:
            gr = (torch.baddbmm if batched else torch.addmm)(grad_rs[t], g_next, w_a)
            gx = torch.addcmul(g_next * (1.0 - alpha), gr, active[t])
        gxs[t] = gx
        g_next = gx
    return gxs


class LeakyRNNFunction(torch.autograd.Function):
    """Run ``x_t = (1-a) x_{t-1} + a W relu(x_{t-1}) + drive_t`` over time; return ``relu(x_t)``.

    Inputs: ``drive`` (T, B, N) -- everything added at step t besides the recurrence (already
    multiplied by ``a``, noise included); ``weight`` (N, N); ``x0`` (B, N); ``alpha`` (float).
    Output: rates (T, B, N).
    """

    @staticmethod
    def forward(ctx, drive: torch.Tensor, weight: torch.Tensor, x0: torch.Tensor,
                alpha: float) -> torch.Tensor:
        xs, rs = leaky_forward_states(drive, weight, x0, alpha)
        ctx.save_for_backward(weight, x0, xs, rs)
        ctx.alpha = alpha
        return rs

    @staticmethod
    def backward(ctx, grad_rs: torch.Tensor):
        weight, x0, xs, rs = ctx.saved_tensors
        alpha = ctx.alpha
        w_a = weight * alpha
        gxs = leaky_backward_states(grad_rs, xs, weight, alpha)
        grad_drive = gxs
        grad_weight = grad_x0 = None
        if ctx.needs_input_grad[1]:
            r_prev = torch.cat([torch.relu(x0)[None], rs[:-1]], dim=0)
            n = weight.shape[0]
            grad_weight = alpha * gxs.reshape(-1, n).t() @ r_prev.reshape(-1, n)
        if ctx.needs_input_grad[2]:
            grad_x0 = gxs[0] * (1.0 - alpha) + (gxs[0] @ w_a) * (x0 > 0).to(x0.dtype)
        return grad_drive, grad_weight, grad_x0, None


def leaky_rnn(drive: torch.Tensor, weight: torch.Tensor, x0: torch.Tensor | None = None,
              alpha: float = 0.2) -> torch.Tensor:
    """Rates of the leaky ReLU network driven by ``drive`` (T, B, N); see :class:`LeakyRNNFunction`."""
    if not isinstance(drive, torch.Tensor) or drive.dim() != 3:
        raise ValueError("drive must be a tensor of shape (time, batch, units)")
    T, B, N = drive.shape
    check_tensor_shape("weight", weight, (N, N))
    alpha = check_real("alpha", alpha, low=0.0, high=1.0, low_open=True)
    if x0 is None:
        x0 = drive.new_zeros(B, N)
    check_tensor_shape("x0", x0, (B, N))
    return LeakyRNNFunction.apply(drive, weight, x0, alpha)


def constrained_step(x: torch.Tensor, weight: torch.Tensor, signs: torch.Tensor,
                     mask: torch.Tensor, drive: torch.Tensor, alpha: float) -> torch.Tensor:
    """One Euler step of the E/I network, written plainly (the reference for lab 1).

    ``x_new = (1 - alpha) x + alpha * relu(x) @ W.T + drive`` with the Dale's-law weights
    ``W = ([weight]_+ * mask * (1 - I)) D`` (see :func:`utils.constraints.masks.effective_weights`).

    Args:
        x: pre-activations, shape (batch, N).
        weight: free recurrent parameters, shape (N, N).
        signs: presynaptic signs (+1 / -1), shape (N,).
        mask: fixed 0/1 sparsity mask, shape (N, N).
        drive: external drive at this step (already scaled by alpha), shape (batch, N).
        alpha: dt / tau in (0, 1].
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError("x must be a tensor of shape (batch, units)")
    check_tensor_shape("drive", drive, tuple(x.shape))
    n = x.shape[1]
    check_tensor_shape("weight", weight, (n, n))
    check_tensor_shape("signs", signs, (n,))
    check_tensor_shape("mask", mask, (n, n))
    alpha = check_real("alpha", alpha, low=0.0, high=1.0, low_open=True)
    w = effective_weights(weight, signs, mask)
    return (1.0 - alpha) * x + alpha * torch.relu(x) @ w.t() + drive


class RateRNN(nn.Module):
    """Continuous-time rate RNN with optional Dale's law, sparsity mask and dendritic input.

    Args:
        n_input, n_units, n_output: layer sizes.
        tau: membrane time constant (ms). dt: Euler step (ms), ``0 < dt <= tau``.
        sigma_rec: recurrent noise; per-step std is ``sqrt(2 dt / tau) * sigma_rec``.
        dale: if True, ``W = ([W+]_+ * M) D`` with an excitatory fraction ``e_frac``, no
            self-connections, and the readout sees only the excitatory units.
        e_frac: excitatory fraction in (0, 1) (used when ``dale``).
        sparsity: fraction of absent recurrent connections in [0, 1) (fixed mask), or pass
            ``mask`` directly.
        mask: optional fixed 0/1 recurrent mask of shape (n_units, n_units).
        n_branches: if given, inputs reach each unit through a two-layer dendritic stage
            (:class:`DendriticInput`) instead of a single linear map.
        rho: spectral radius of the initial recurrent weights (set by the fixed factor
            ``weight_scale``; the trainable ``weight`` stays of order one).
        seed: seed of the sparsity mask.
        readout: ``"linear"`` (default: any sign, with bias), ``"nonnegative"`` (weights kept
            >= 0 like the recurrent ones: rectified straight-through in the forward pass, clipped
            by :meth:`constrain_`; with bias) or ``"identity"`` (a fixed partial identity: output
            k *is* unit k's rate, so the output units are network units; no readout parameters;
            needs ``n_output`` <= the number of units the readout sees). Chapter 9 compares the
            last two.
        dropout: probability of silencing each unit during training (chapter 9's dropout on
            recurrent units): one mask per forward pass, shared by the batch's trials (the
            recurrent weights are shared), the kept units' outputs scaled by
            ``1 / (1 - dropout)``; off in ``eval()`` mode.

    ``forward(u)`` takes inputs of shape (time, batch, n_input) and returns
    ``(outputs, rates)`` of shapes (time, batch, n_output) and (time, batch, n_units).
    """

    def __init__(self, n_input: int, n_units: int, n_output: int, *, tau: float = 100.0,
                 dt: float = 20.0, sigma_rec: float = 0.0, dale: bool = False,
                 e_frac: float = 0.8, sparsity: float = 0.0, mask: torch.Tensor | None = None,
                 n_branches: int | None = None, rho: float = 1.0, seed: int = 0,
                 readout: str = "linear", dropout: float = 0.0) -> None:
        super().__init__()
        set_interface_sizes(self, n_input, n_units, n_output, tau=tau, dt=dt)
        self.sigma_rec = check_real("sigma_rec", sigma_rec, low=0.0)
        self.dale = check_bool("dale", dale)
        rho = check_real("rho", rho, low=0.0, low_open=True)
        n = self.n_units
        if mask is None:
            mask = sparsity_mask(n, n, sparsity, seed=seed, no_self=dale)
        else:
            check_tensor_shape("mask", mask, (n, n))
            mask = torch.as_tensor(mask, dtype=torch.float32)
            if not torch.all((mask == 0) | (mask == 1)):
                raise ValueError("mask must contain only zeros and ones")
        self.register_buffer("mask", mask.float())
        if dale:
            self.n_exc = n_excitatory(n, e_frac)
            self.register_buffer("signs", dale_signs(n, e_frac))
        else:
            self.n_exc = n
            self.register_buffer("signs", torch.ones(n))

        if n_branches is None:
            self.input_layer: nn.Module = nn.Linear(self.n_input, n)
        else:
            self.input_layer = DendriticInput(self.n_input, n, n_branches)
        self.bias = nn.Parameter(torch.zeros(n))
        raw = self._initial_weights()
        radius = torch.linalg.eigvals(self._effective(raw)).abs().max().item()
        # The trainable parameters stay of order one and a fixed factor sets the spectral radius,
        # so Adam's steps (about lr per parameter, whatever the gradient's size) are small
        # relative changes of every weight; without it an E/I network with its small initial
        # weights changes by tens of percent per update and its excitatory loop runs away.
        self.register_buffer("weight_scale", torch.tensor(rho / max(radius, 1e-8)))
        self.weight = nn.Parameter(raw)
        self.readout_mode = check_choice("readout", readout, ["linear", "nonnegative", "identity"])
        self.dropout = check_real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        if readout == "identity":
            if self.n_output > self.n_exc:
                raise ValueError(f"readout='identity' needs n_output <= {self.n_exc} (the units "
                                 f"the readout sees), got n_output={self.n_output}")
            self.readout = None
            self.register_buffer("identity_readout", torch.eye(self.n_output, self.n_exc))
        else:
            self.readout = nn.Linear(self.n_exc, self.n_output)
            if readout == "nonnegative":
                with torch.no_grad():
                    self.readout.weight.abs_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401
        # load_state_dict must not accept buffers the constructor would refuse
        n = self.n_units
        expected_signs = torch.ones(n)
        expected_signs[self.n_exc:] = -1.0
        rules = {"mask": lambda v: (f"must have shape {(n, n)}" if tuple(v.shape) != (n, n)
                                    else zeros_and_ones(v)),
                 "signs": fixed_buffer(expected_signs, f"+1 for the {self.n_exc} excitatory units "
                                                       f"and -1 for the rest"),
                 "weight_scale": positive_finite}
        if self.readout_mode == "identity":
            rules["identity_readout"] = fixed_buffer(torch.eye(self.n_output, self.n_exc),
                                                     "the partial identity")
        check_loaded_buffers(state_dict, prefix, rules)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def alpha(self) -> float:
        """Euler factor ``dt / tau``."""
        return self.dt / self.tau

    def _initial_weights(self) -> torch.Tensor:
        n = self.n_units
        if self.dale:
            # Non-negative magnitudes; inhibitory columns scaled so that E and I inputs balance
            # on average (as in Song, Yang & Wang 2016).
            w = torch.empty(n, n).exponential_(1.0)
            n_inh = n - self.n_exc
            w[:, self.n_exc:] *= self.n_exc / n_inh
        else:
            w = torch.randn(n, n)
        return w * self.mask

    def _effective(self, w: torch.Tensor) -> torch.Tensor:
        if self.dale:
            # Rectify in value, but let the gradient through unchanged ("straight-through"), so a
            # synapse that was clipped to zero can grow back: together with constrain_() after
            # each step this is projected gradient descent, the lecture's "rectify after every
            # learning step", while the weights used in the forward pass obey Dale's law exactly
            # even if constrain_() is never called. (A plain relu would give zero gradient at
            # zero and silence every clipped synapse for good.)
            w_pos = w + (torch.relu(w) - w).detach()
            no_self = 1.0 - torch.eye(w.shape[0], dtype=w.dtype, device=w.device)
            return w_pos * no_self * self.mask * self.signs[None, :]
        return w * self.mask

    def recurrent_weights(self) -> torch.Tensor:
        """Effective recurrent weights ``W[post, pre]`` used in the dynamics.

        ``W = weight_scale * ([weight]_+ * mask * (1 - I)) D`` with Dale's law, else
        ``weight_scale * weight * mask``; ``weight_scale`` is fixed at construction so that the
        initial spectral radius is ``rho``.
        """
        return self._effective(self.weight) * self.weight_scale

    def readout_matrix(self) -> torch.Tensor:
        """Effective readout weights (n_output, n_exc) used in the forward pass (the fixed
        partial identity, the rectified non-negative weights, or the linear weights)."""
        if self.readout is None:
            return self.identity_readout
        if self.readout_mode == "nonnegative":
            w = self.readout.weight
            return w + (torch.relu(w) - w).detach()
        return self.readout.weight

    def input_drive(self, u: torch.Tensor) -> torch.Tensor:
        """``W_in u + b`` for every time step, shape (time, batch, n_units)."""
        return self.input_layer(u) + self.bias

    def forward(self, u: torch.Tensor, x0: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(u, torch.Tensor) or u.dim() != 3 or u.shape[-1] != self.n_input:
            raise ValueError(f"u must be a tensor of shape (time, batch, {self.n_input}), got "
                             f"{tuple(u.shape) if hasattr(u, 'shape') else type(u).__name__}")
        u = u.to(self.weight.dtype)  # e.g. float64 from torch.from_numpy, as LowRankRNN does
        drive = self.alpha * self.input_drive(u)
        if self.sigma_rec > 0:
            drive = drive + math.sqrt(2.0 * self.alpha) * self.sigma_rec * torch.randn_like(drive)
        weights = self.recurrent_weights()
        keep = None
        if self.training and self.dropout > 0:
            keep = (torch.rand(self.n_units, device=u.device) >= self.dropout).to(drive.dtype)
            keep = keep / (1.0 - self.dropout)
            weights = weights * keep[None, :]      # a dropped unit sends nothing ...
        rates = leaky_rnn(drive, weights, x0, self.alpha)
        seen = rates if keep is None else rates * keep   # ... and is not read out
        if self.readout_mode == "linear":
            outputs = self.readout(seen[..., : self.n_exc])
        else:
            outputs = seen[..., : self.n_exc] @ self.readout_matrix().t()
            if self.readout is not None:
                outputs = outputs + self.readout.bias
        return outputs, rates

    @torch.no_grad()
    def constrain_(self) -> None:
        """Lecture's step 1: clip negative parameters to zero and zero masked entries.

        The forward pass already rectifies and masks, so this never changes the effective
        weights; it keeps the stored parameters identical to them in magnitude.
        """
        if self.dale:
            self.weight.clamp_(min=0.0)
        self.weight.mul_(self.mask)
        if self.readout_mode == "nonnegative":
            self.readout.weight.clamp_(min=0.0)

    @torch.no_grad()
    def constraint_violations(self) -> int:
        """Number of entries that break the network's constraints (see
        :func:`count_constraint_violations`): effective weights against the signs the columns
        *should* have (the first ``n_exc`` units excitatory, recomputed here rather than read from
        the ``signs`` buffer), the mask and the diagonal, and the stored parameters, which the
        projection step (:meth:`constrain_`, called by :func:`utils.training.train` after every
        update) must have clipped. The effective-weight part holds by construction while the
        forward pass rectifies and masks; the parameter part fails as soon as the projection is
        skipped or the parameters are overwritten (a unit test corrupts networks and sees it fail).
        """
        n = self.n_units
        if self.dale:
            expected = torch.ones(n)
            expected[self.n_exc:] = -1.0
        else:
            expected = None
        return count_constraint_violations(self.weight, self.recurrent_weights(), expected,
                                           self.mask)


@torch.no_grad()
def count_constraint_violations(weight: torch.Tensor, effective: torch.Tensor,
                                signs: torch.Tensor | None, mask: torch.Tensor) -> int:
    """Count the entries that break Dale's law, the mask or the no-self-connection rule.

    Args:
        weight: the stored parameters ``W+`` (N, N).
        effective: the effective recurrent weights the dynamics use (N, N).
        signs: the sign every presynaptic unit (column) must have, (N,) of +1/-1; ``None`` for a
            network without Dale's law (then only the mask is checked).
        mask: the 0/1 connectivity mask (N, N).

    Counted once per entry (i, j): an effective weight that is non-zero where the mask is zero or
    on the diagonal (Dale networks), or whose sign differs from ``signs[j]``; and a stored
    parameter that is negative (Dale networks) or non-zero where the mask is zero. Returns 0
    exactly when every rule holds in both places (chapter 1; Lab 1 asks students to write it).
    """
    w = torch.as_tensor(effective).detach()
    p = torch.as_tensor(weight).detach()
    m = torch.as_tensor(mask)
    if w.dim() != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"effective must be a square matrix, got shape {tuple(w.shape)}")
    for name, value in [("weight", p), ("mask", m)]:
        if tuple(value.shape) != tuple(w.shape):
            raise ValueError(f"{name} must have the shape of effective {tuple(w.shape)}, got "
                             f"{tuple(value.shape)}")
    outside = m == 0
    bad = (w != 0) & outside
    bad |= (p != 0) & outside
    if signs is not None:
        s = torch.as_tensor(signs, dtype=w.dtype)
        if tuple(s.shape) != (w.shape[1],):
            raise ValueError(f"signs must have shape ({w.shape[1]},), got {tuple(s.shape)}")
        bad |= (w * s[None, :]) < 0
        bad |= torch.eye(w.shape[0], dtype=torch.bool) & (w != 0)
        bad |= p < 0
    return int(bad.sum())
