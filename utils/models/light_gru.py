"""Light gated recurrent units (light-GRU) and their brain-like variants (chapters 4 and 5).

The light-GRU of Ravanelli et al. (2018) drops the GRU's reset gate, uses a ReLU candidate and
batch-normalises the feed-forward projections:

.. math::

    z_t = \\sigma(\\mathrm{BN}(W_z x_t) + U_z h_{t-1}),\\qquad
    \\tilde h_t = \\mathrm{ReLU}(\\mathrm{BN}(W_h x_t) + U_h h_{t-1}),\\qquad
    h_t = z_t \\odot h_{t-1} + (1 - z_t) \\odot \\tilde h_t .

Batch norm uses the statistics of the current batch (over time steps and trials) in training and
its running estimates in evaluation (``model.eval()``, which :func:`utils.training.train` calls at
the end); its shift ``beta`` replaces the biases. From ``h_0 = 0`` the state is a convex mix of
ReLU outputs, so ``h_t >= 0``: the units have non-negative "rates", which is what makes Dale's law
on ``U`` meaningful.

Variants (one class, :class:`LightGRU`):

- ``n_branches=k``: the **dendritic-unit light-GRU**. Each unit owns ``k`` ReLU dendritic
  sub-units fed by the inputs; its gate and candidate read only its own branches, through
  block-masked matrices. The mask multiplies the weights in every forward pass, so the masked
  entries get zero gradient and stay exactly zero (as in chapter 1).
- ``dale="rectify"``: the **E/I light-GRU**, Dale's law for real: both recurrent matrices are
  ``([U_+]_+ \\odot (1 - I)) D`` (the course's rectify-times-sign construction; every outgoing
  recurrent weight of a unit carries that unit's sign). The rectification lets the gradient through
  unchanged and :meth:`LightGRU.constrain_` clips the stored parameters after each update, i.e.
  projected gradient descent, so a clipped synapse can grow back.
- ``dale="sign_flip"``: the sign-flip-only mask ``U \\odot (1 - I) D`` without rectification. It is
  **not** Dale's law (a parameter that learning drives negative flips the weight's sign); kept
  only to show the difference in chapter 4.

The readout is a linear layer from all units. The time loop runs in :class:`LightGRUFunction`, a
custom autograd function with a hand-written backward pass (checked with ``gradcheck`` in the
tests), a few batched tensor operations per time step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..constraints.masks import dale_signs, dendritic_block_mask, n_excitatory
from ..validation import check_bool, check_choice, check_int, check_real, check_tensor_shape
from .base import check_loaded_buffers, fixed_buffer, set_interface_sizes

__all__ = ["LightGRUFunction", "light_gru", "light_gru_step", "LightGRU"]

DALE_MODES = (None, "rectify", "sign_flip")


class LightGRUFunction(torch.autograd.Function):
    """Run the light-GRU recurrence over time (chapter 4).

    Inputs: ``drive`` (T, B, 2N), the feed-forward parts of the gate (first N) and candidate
    (last N) pre-activations; ``weight`` (2N, N), the stacked recurrent matrices ``[U_z; U_h]``;
    ``h0`` (B, N). Output: the states ``h_1 ... h_T``, shape (T, B, N).
    """

    @staticmethod
    def forward(ctx, drive: torch.Tensor, weight: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        T, B, two_n = drive.shape
        n = two_n // 2
        hs = drive.new_empty(T, B, n)
        zs = torch.empty_like(hs)
        cs = torch.empty_like(hs)
        w_t = weight.t()
        h = h0
        for t in range(T):
            g = torch.addmm(drive[t], h, w_t)
            z = torch.sigmoid(g[:, :n], out=zs[t])
            c = torch.clamp(g[:, n:], min=0.0, out=cs[t])
            torch.addcmul(c, z, h - c, out=hs[t])          # h_t = c + z (h_{t-1} - c)
            h = hs[t]
        ctx.save_for_backward(weight, h0, hs, zs, cs)
        return hs

    @staticmethod
    def backward(ctx, grad_hs: torch.Tensor):
        weight, h0, hs, zs, cs = ctx.saved_tensors
        T, B, n = hs.shape
        h_prev = torch.cat([h0[None], hs[:-1]], dim=0)
        # d h_t / d g_z and d h_t / d g_h do not depend on the recursion: batched over time
        dz_factor = (h_prev - cs) * zs * (1.0 - zs)
        dc_factor = (1.0 - zs) * (cs > 0).to(hs.dtype)
        gd = hs.new_empty(T, B, 2 * n)
        dh = grad_hs[T - 1]
        dh0 = None
        for t in range(T - 1, -1, -1):
            torch.mul(dh, dz_factor[t], out=gd[t, :, :n])
            torch.mul(dh, dc_factor[t], out=gd[t, :, n:])
            carry = torch.addmm(dh * zs[t], gd[t], weight)  # d loss / d h_{t-1} through step t
            if t > 0:
                dh = carry + grad_hs[t - 1]
            else:
                dh0 = carry
        grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = gd.reshape(-1, 2 * n).t() @ h_prev.reshape(-1, n)
        return gd, grad_weight, (dh0 if ctx.needs_input_grad[2] else None)


def light_gru(drive: torch.Tensor, weight: torch.Tensor, h0: torch.Tensor | None = None
              ) -> torch.Tensor:
    """States of the light-GRU driven by ``drive`` (T, B, 2N); see :class:`LightGRUFunction`."""
    if not isinstance(drive, torch.Tensor) or drive.dim() != 3 or drive.shape[-1] % 2:
        raise ValueError("drive must be a tensor of shape (time, batch, 2 * units), got "
                         f"{tuple(drive.shape) if hasattr(drive, 'shape') else type(drive).__name__}")
    T, B, two_n = drive.shape
    check_tensor_shape("weight", weight, (two_n, two_n // 2))
    if h0 is None:
        h0 = drive.new_zeros(B, two_n // 2)
    check_tensor_shape("h0", h0, (B, two_n // 2))
    return LightGRUFunction.apply(drive, weight, h0)


def light_gru_step(h: torch.Tensor, drive_z: torch.Tensor, drive_h: torch.Tensor,
                   u_z: torch.Tensor, u_h: torch.Tensor) -> torch.Tensor:
    """One light-GRU step written plainly (the reference of lab 4).

    ``z = sigmoid(drive_z + h U_z^T)``, ``c = relu(drive_h + h U_h^T)``, returns
    ``z * h + (1 - z) * c``. ``h``, ``drive_z``, ``drive_h``: (batch, N); ``u_z``, ``u_h``: (N, N).
    """
    if not isinstance(h, torch.Tensor) or h.dim() != 2:
        raise ValueError("h must be a tensor of shape (batch, units)")
    n = h.shape[1]
    for name, x in (("drive_z", drive_z), ("drive_h", drive_h)):
        check_tensor_shape(name, x, tuple(h.shape))
    for name, x in (("u_z", u_z), ("u_h", u_h)):
        check_tensor_shape(name, x, (n, n))
    z = torch.sigmoid(drive_z + h @ u_z.t())
    c = torch.relu(drive_h + h @ u_h.t())
    return z * h + (1.0 - z) * c


class LightGRU(nn.Module):
    """Light-GRU network with a linear readout, in the course's model interface (chapter 4).

    Args:
        n_input, n_units, n_output: layer sizes.
        dt: the task's time step (ms). A discrete-time GRU has no membrane time constant: each
            forward step is one task step, ``dt`` is only recorded (the gate ``z`` plays the role
            of a learned, state-dependent ``1 - dt/tau``). ``tau`` is accepted for the common
            interface and must be None.
        n_branches: if given, the dendritic-unit light-GRU with this many branches per unit.
        dale: None (unconstrained), ``"rectify"`` (Dale's law) or ``"sign_flip"`` (the
            sign-flip-only mask, not Dale's law; see the module docstring).
        e_frac: fraction of excitatory units (with ``dale``).
        batch_norm: batch-normalise the feed-forward projections (the light-GRU's choice).
        rho: spectral radius of the initial candidate matrix ``U_h``: an orthogonal matrix times
            ``rho`` without Dale's law; with it, non-negative E/I-balanced exponential magnitudes
            scaled to this radius (the parameters themselves carry the scale, so Adam's steps are
            the same size as for the unconstrained network).

    ``forward(u)`` takes inputs (time, batch, n_input) and returns ``(outputs, states)`` of shapes
    (time, batch, n_output) and (time, batch, n_units).
    """

    def __init__(self, n_input: int, n_units: int, n_output: int, *, dt: float = 100.0,
                 tau: float | None = None, n_branches: int | None = None, dale: str | None = None,
                 e_frac: float = 0.8, batch_norm: bool = True, rho: float = 1.0) -> None:
        super().__init__()
        if tau is not None:
            raise ValueError("tau must be None: the light-GRU is a discrete-time network whose gate "
                             f"learns each unit's time scale, got tau={tau!r}")
        set_interface_sizes(self, n_input, n_units, n_output, tau=None, dt=dt)
        self.dale = check_choice("dale", dale, DALE_MODES)
        batch_norm = check_bool("batch_norm", batch_norm)
        rho = check_real("rho", rho, low=0.0, low_open=True)
        n = self.n_units
        self.n_branches = None if n_branches is None else check_int("n_branches", n_branches,
                                                                     min_value=1)
        if self.n_branches is None:
            self.input_layer = nn.Linear(self.n_input, 2 * n, bias=not batch_norm)
        else:
            k = self.n_branches
            self.branches = nn.Linear(self.n_input, n * k)
            block = dendritic_block_mask(n, k)
            self.register_buffer("block_mask", torch.cat([block, block], dim=0))
            self.soma_weight = nn.Parameter(torch.randn(2 * n, n * k) / math.sqrt(k) * self.block_mask)
            self.soma_bias = None if batch_norm else nn.Parameter(torch.zeros(2 * n))
        self.norm = nn.BatchNorm1d(2 * n) if batch_norm else None
        if self.dale is None:
            self.n_exc = n
            self.register_buffer("signs", torch.ones(n))
            w = torch.empty(2 * n, n)
            w[:n].uniform_(-1.0, 1.0).div_(math.sqrt(n))
            nn.init.orthogonal_(w[n:], gain=rho)
        else:
            self.n_exc = n_excitatory(n, e_frac)
            self.register_buffer("signs", dale_signs(n, e_frac))
            w = torch.empty(2 * n, n).exponential_(1.0)
            w[:, self.n_exc:] *= self.n_exc / (n - self.n_exc)   # E and I inputs balance on average
            radius = torch.linalg.eigvals(self._effective(w)[n:]).abs().max().item()
            w *= rho / max(radius, 1e-8)
        self.weight = nn.Parameter(w)
        self.readout = nn.Linear(n, self.n_output)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # load_state_dict must not accept buffers the constructor would refuse
        n = self.n_units
        expected_signs = torch.ones(n)
        expected_signs[self.n_exc:] = -1.0
        rules = {"signs": fixed_buffer(expected_signs, f"+1 for the {self.n_exc} excitatory units "
                                                       f"and -1 for the rest")}
        if self.n_branches is not None:
            block = dendritic_block_mask(n, self.n_branches)
            rules["block_mask"] = fixed_buffer(torch.cat([block, block], dim=0),
                                               "the block-diagonal dendritic mask")
        check_loaded_buffers(state_dict, prefix, rules)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _effective(self, w: torch.Tensor) -> torch.Tensor:
        if self.dale is None:
            return w
        n = self.n_units
        if self.dale == "rectify":
            # rectified in value, gradient passed straight through (projected gradient descent
            # together with constrain_()); the forward pass obeys Dale's law exactly either way
            w = w + (torch.relu(w) - w).detach()
        no_self = 1.0 - torch.eye(n, dtype=w.dtype, device=w.device)
        return w * no_self.repeat(2, 1) * self.signs[None, :]

    def recurrent_matrices(self) -> torch.Tensor:
        """The stacked effective recurrent matrices ``[U_z; U_h]``, shape (2 n_units, n_units)."""
        return self._effective(self.weight)

    def recurrent_weights(self) -> torch.Tensor:
        """Effective candidate matrix ``U_h[post, pre]`` (n_units, n_units): the synaptic
        recurrence (the gate's ``U_z`` is ``recurrent_matrices()[:n_units]``)."""
        return self.recurrent_matrices()[self.n_units:]

    def soma_matrix(self) -> torch.Tensor:
        """Dendritic variant: the block-masked branch-to-unit matrix (2 n_units, n_units * k)."""
        if self.n_branches is None:
            raise ValueError("soma_matrix needs a dendritic-unit model (n_branches given)")
        return self.soma_weight * self.block_mask

    def input_drive(self, u: torch.Tensor) -> torch.Tensor:
        """Feed-forward pre-activations ``[BN(W_z u); BN(W_h u)]``, shape (time, batch, 2 n_units)."""
        T, B, _ = u.shape
        if self.n_branches is None:
            a = self.input_layer(u)
        else:
            a = torch.relu(self.branches(u)) @ self.soma_matrix().t()
            if self.soma_bias is not None:
                a = a + self.soma_bias
        if self.norm is not None:
            a = self.norm(a.reshape(T * B, -1)).reshape(T, B, -1)
        return a

    def forward(self, u: torch.Tensor, h0: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(u, torch.Tensor) or u.dim() != 3 or u.shape[-1] != self.n_input:
            raise ValueError(f"u must be a tensor of shape (time, batch, {self.n_input}), got "
                             f"{tuple(u.shape) if hasattr(u, 'shape') else type(u).__name__}")
        states = light_gru(self.input_drive(u), self.recurrent_matrices(), h0)
        return self.readout(states), states

    @torch.no_grad()
    def constrain_(self) -> None:
        """With ``dale="rectify"``: clip negative parameters to zero (never changes the effective
        weights, which are rectified in the forward pass anyway). Otherwise nothing."""
        if self.dale == "rectify":
            self.weight.clamp_(min=0.0)

    @torch.no_grad()
    def lesion_(self, units) -> "LightGRU":
        """Silence the effect of ``units`` (indices): zero their outgoing recurrent weights (to
        gates and candidates) and their readout weights; returns self. Their own states still
        evolve but no longer influence anything. Use on a copy (``copy.deepcopy(model)``)."""
        idx = torch.as_tensor(units, dtype=torch.long).flatten()
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.n_units):
            raise ValueError(f"units must be indices in [0, {self.n_units}), got {idx.tolist()}")
        self.weight[:, idx] = 0.0
        self.readout.weight[:, idx] = 0.0
        return self

    @torch.no_grad()
    def dale_violations(self) -> int:
        """Number of off-diagonal effective recurrent weights (in ``U_z`` and ``U_h``) whose sign
        disagrees with their presynaptic unit's sign in ``signs`` (0 for Dale's law)."""
        w = self.recurrent_matrices()
        return int((w * self.signs[None, :] < 0).sum().item())
