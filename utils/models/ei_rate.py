"""The excitatory-inhibitory rate network of Song, Yang & Wang (2016), introduced in chapter 7.

.. math::

    x_t = (1-\\alpha) x_{t-1} + \\alpha (W_{rec} r_{t-1} + W_{in} u_t) + \\sqrt{2\\alpha}\\,\\sigma_{rec}\\,\\xi_t,
    \\qquad r_t = [x_t]_+, \\qquad z_t = W_{out} r_t,

with every weight matrix passed through a rectifier and Dale's law applied by presynaptic signs:
``W_in = [w_in]_+ * C_in``, ``W_rec = ([w_rec]_+ * C_rec) D``, ``W_out = [w_out]_+ * C_out`` (the
readout sees only excitatory units). The initial state ``x_0`` is trained; there are no biases.
The time loop is the course's :class:`~utils.models.rate.LeakyRNNFunction` (hand-written backward).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..constraints.masks import dale_signs, n_excitatory
from ..validation import check_int, check_real, check_tensor_shape
from .base import check_loaded_buffers, fixed_buffer, set_interface_sizes, zeros_and_ones
from .rate import leaky_rnn

__all__ = ["balanced_structure", "gamma_balanced_weights", "EIRateRNN", "song_update", "masked_squared_error",
           "vanishing_gradient_regulariser"]


def balanced_structure(n_units: int, e_frac: float = 0.8) -> torch.Tensor:
    """Mean-balanced connection structure of Song et al. (2016), shape (n_units, n_units).

    Every unit receives from every other unit (no self-connections); in each row the inhibitory
    entries are scaled so that their sum equals the excitatory entries' sum, and the row is then
    normalised to unit Euclidean length. The entries set the mean of the initial weights.
    """
    n_e = n_excitatory(n_units, e_frac)
    c = 1.0 - torch.eye(n_units, dtype=torch.float64)
    exc_sum = c[:, :n_e].sum(dim=1, keepdim=True)
    inh_sum = c[:, n_e:].sum(dim=1, keepdim=True)
    c[:, n_e:] *= exc_sum / inh_sum
    return (c / c.norm(dim=1, keepdim=True)).float()


def gamma_balanced_weights(n_units: int, e_frac: float = 0.8, *, rho: float = 1.5, k: float = 2.0,
                           seed: int = 0) -> torch.Tensor:
    """Initial recurrent weight magnitudes of Song et al. (2016), shape (n_units, n_units).

    Each connection ``W[i, j]`` (from ``j`` to ``i``) is drawn from a gamma distribution of shape
    ``k`` and mean ``0.1 * C[i, j]``, where ``C`` is :func:`balanced_structure`; the matrix is then
    scaled so that the signed matrix ``W D`` has spectral radius ``rho``. The result is
    non-negative (the signs are applied by the model); its diagonal is zero.
    """
    n_units = check_int("n_units", n_units, min_value=2)
    rho = check_real("rho", rho, low=0.0, low_open=True)
    k = check_real("k", k, low=0.0, low_open=True)
    seed = check_int("seed", seed, min_value=0)
    c = balanced_structure(n_units, e_frac).double()
    rng = torch.Generator().manual_seed(seed)
    # Gamma(k, theta) by the standard-gamma sampler on a private generator: theta = 0.1 C / k.
    std_gamma = _standard_gamma(k, (n_units, n_units), rng)
    w = std_gamma * 0.1 * c / k
    signs = dale_signs(n_units, e_frac).double()
    radius = torch.linalg.eigvals(w * signs[None, :]).abs().max().item()
    return (w * (rho / radius)).float()


def _standard_gamma(k: float, shape: tuple[int, int], rng: torch.Generator) -> torch.Tensor:
    """Samples of Gamma(k, 1) from a private generator (Marsaglia & Tsang 2000)."""
    boost = k < 1.0
    a = k + 1.0 if boost else k
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    n = shape[0] * shape[1]
    out = torch.empty(0, dtype=torch.float64)
    while out.numel() < n:
        m = 2 * (n - out.numel()) + 16
        z = torch.randn(m, generator=rng, dtype=torch.float64)
        u = torch.rand(m, generator=rng, dtype=torch.float64)
        v = (1.0 + c * z) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * z ** 2 + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        out = torch.cat([out, (d * v)[ok]])
    out = out[:n]
    if boost:
        out = out * torch.rand(n, generator=rng, dtype=torch.float64) ** (1.0 / k)
    return out.reshape(shape)


class RectifiedWeights:
    """The effective weights of Song et al.'s network from its free parameters, written once for
    :class:`EIRateRNN` (shapes below) and :class:`utils.models.ei_stack.StackedEIRateRNN` (the
    same with a leading axis of K networks): every weight is used through a rectifier and a
    fixed mask, and the recurrent columns take their presynaptic unit's sign (Dale's law)."""

    def input_weights(self) -> torch.Tensor:
        """Effective input weights ``[w_in]_+ * C_in``, shape (n_units, n_input)."""
        return torch.relu(self.w_in) * self.in_mask

    def recurrent_weights(self) -> torch.Tensor:
        """Effective recurrent weights ``W[post, pre] = ([w_rec]_+ * (1 - I)) D``."""
        return torch.relu(self.w_rec) * self.rec_mask * self.signs.unsqueeze(-2)

    def output_weights(self) -> torch.Tensor:
        """Effective readout ``[w_out]_+ * C_out`` (excitatory columns only), (n_output, n_units)."""
        return torch.relu(self.w_out) * self.out_mask


class EIRateRNN(RectifiedWeights, nn.Module):
    """Rate network with Dale's law and rectified weights, as in Song, Yang & Wang (2016).

    Args:
        n_input, n_units, n_output: layer sizes.
        tau: time constant (ms); dt: Euler step (ms), ``0 < dt <= tau`` (the paper: tau / 5).
        e_frac: excitatory fraction; the first ``round(e_frac * n_units)`` units are excitatory.
        sigma_rec: recurrent noise; per-step standard deviation ``sqrt(2 dt / tau) * sigma_rec``.
        rho: spectral radius of the initial signed recurrent matrix.
        gamma_k: shape of the gamma distribution of the initial recurrent weights.
        x0: initial value of the (trained) initial state.
        input_mask: fixed 0/1 mask (n_units, n_input) of which unit receives which input
            (default: every unit every input).
        seed: seed of the initial weights (a private generator; the global RNG is untouched).

    Trained parameters: ``w_in``, ``w_rec``, ``w_out`` (used through a rectifier, so the
    effective weights are never negative) and ``x0``. ``forward(u)`` returns ``(outputs, rates)``
    of shapes (time, batch, n_output) and (time, batch, n_units).
    """

    def __init__(self, n_input: int = 5, n_units: int = 150, n_output: int = 2, *,
                 tau: float = 100.0, dt: float = 20.0, e_frac: float = 0.8,
                 sigma_rec: float = 0.15, rho: float = 1.5, gamma_k: float = 2.0, x0: float = 0.1,
                 input_mask: torch.Tensor | None = None, seed: int = 0) -> None:
        super().__init__()
        set_interface_sizes(self, n_input, n_units, n_output, tau=tau, dt=dt)
        self.e_frac = check_real("e_frac", e_frac, low=0.0, high=1.0, low_open=True, high_open=True)
        self.sigma_rec = check_real("sigma_rec", sigma_rec, low=0.0)
        seed = check_int("seed", seed, min_value=0)
        n = self.n_units
        self.n_exc = n_excitatory(n, self.e_frac)
        if input_mask is None:
            input_mask = torch.ones(n, self.n_input)
        check_tensor_shape("input_mask", input_mask, (n, self.n_input))
        input_mask = torch.as_tensor(input_mask, dtype=torch.float32)
        if not torch.all((input_mask == 0) | (input_mask == 1)):
            raise ValueError("input_mask must contain only zeros and ones")
        signs = dale_signs(n, self.e_frac)
        self.register_buffer("signs", signs)
        self.register_buffer("in_mask", input_mask.clone())
        self.register_buffer("rec_mask", 1.0 - torch.eye(n))
        out_mask = torch.zeros(self.n_output, n)
        out_mask[:, : self.n_exc] = 1.0
        self.register_buffer("out_mask", out_mask)
        rng = torch.Generator().manual_seed(seed)
        w_in = 0.1 * (2 * torch.rand(n, self.n_input, generator=rng) - 1).abs()
        w_out = 0.1 * (2 * torch.rand(self.n_output, n, generator=rng) - 1).abs()
        self.w_in = nn.Parameter(w_in * self.in_mask)
        self.w_rec = nn.Parameter(gamma_balanced_weights(n, self.e_frac, rho=rho, k=gamma_k,
                                                         seed=seed + 1))
        self.w_out = nn.Parameter(w_out * self.out_mask)
        self.x0 = nn.Parameter(torch.full((n,), float(check_real("x0", x0))))
        self._recorded: tuple[torch.Tensor, torch.Tensor] | None = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # load_state_dict must not accept buffers the constructor would refuse
        n = self.n_units
        out_mask = torch.zeros(self.n_output, n)
        out_mask[:, : self.n_exc] = 1.0
        check_loaded_buffers(state_dict, prefix, {
            "signs": fixed_buffer(dale_signs(n, self.e_frac), f"+1 for the {self.n_exc} "
                                  f"excitatory units and -1 for the rest"),
            "in_mask": lambda v: (f"must have shape {(n, self.n_input)}"
                                  if tuple(v.shape) != (n, self.n_input) else zeros_and_ones(v)),
            "rec_mask": fixed_buffer(1.0 - torch.eye(n), "1 - I (no self-connections)"),
            "out_mask": fixed_buffer(out_mask, "the readout from excitatory units only"),
        })
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def alpha(self) -> float:
        """Euler factor ``dt / tau``."""
        return self.dt / self.tau

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(u, torch.Tensor) or u.dim() != 3 or u.shape[-1] != self.n_input:
            raise ValueError(f"u must be a tensor of shape (time, batch, {self.n_input}), got "
                             f"{tuple(u.shape) if hasattr(u, 'shape') else type(u).__name__}")
        alpha = self.alpha
        drive = (alpha * u) @ self.input_weights().t()
        if self.sigma_rec > 0:
            drive = drive + math.sqrt(2.0 * alpha) * self.sigma_rec * torch.randn_like(drive)
        x0 = self.x0.expand(u.shape[1], self.n_units)
        rates = leaky_rnn(drive, self.recurrent_weights(), x0, alpha)
        if drive.requires_grad:
            drive.retain_grad()      # after backward(): drive.grad[t] = dE/dx_t (regulariser)
            self._recorded = (drive, rates)
        outputs = rates @ self.output_weights().t()
        return outputs, rates

    @torch.no_grad()
    def dale_violations(self) -> int:
        """Number of effective weights that break the architecture, counted against the declared
        cell types (units ``0 .. n_exc-1`` excitatory, the rest inhibitory), not against the
        ``signs`` buffer the forward pass uses: a recurrent weight whose sign differs from its
        presynaptic unit's type, a self-connection, a negative input or readout weight, or a
        readout weight from an inhibitory unit."""
        w = self.recurrent_weights()
        declared = torch.ones(self.n_units, dtype=w.dtype)
        declared[self.n_exc:] = -1.0
        bad = int((w * declared[None, :] < 0).sum() + (torch.diagonal(w) != 0).sum())
        bad += int((self.input_weights() < 0).sum() + (self.output_weights() < 0).sum())
        bad += int((self.output_weights()[:, self.n_exc:] != 0).sum())
        return bad


def vanishing_gradient_regulariser(model: EIRateRNN, lambda_omega: float = 2.0,
                                   bound: float = 1e-20) -> float:
    """Add Pascanu et al.'s (2013) regulariser's gradient to ``model.w_rec.grad``; return Omega.

    Call after ``loss.backward()`` on a loss computed from the model's last forward pass. With
    ``g_t = dE/dx_t`` (held fixed, the "immediate derivative") and the one-step Jacobian
    ``J_t = (1 - alpha) I + alpha W_rec diag(f'(x_{t-1}))``,

    ``Omega = sum_t mean_batch (|g_t J_t|^2 / |g_t|^2 - 1)^2 / sum_t mean_batch [|g_t|^2 >= bound]``

    which penalises gradients that shrink (or grow) from one step to the previous; steps with
    ``|g_t|^2 < bound`` (e.g. after a trial's end) count as 0. Only ``w_rec`` receives it, with
    weight ``lambda_omega`` (the paper's 2). (The paper's code pairs ``g_t`` with ``f'(x_t)``;
    here the Jacobian is the one the update equation gives, with ``f'(x_{t-1})``.) The gradient is
    written out by hand (two matrix products), checked against finite differences in the tests.
    """
    if not isinstance(model, EIRateRNN):
        raise TypeError(f"model must be an EIRateRNN, got {type(model).__name__}")
    lambda_omega = check_real("lambda_omega", lambda_omega, low=0.0)
    bound = check_real("bound", bound, low=0.0, low_open=True)
    if model._recorded is None or model._recorded[0].grad is None:
        raise ValueError("call loss.backward() on a loss from the model's forward pass first")
    drive, rates = model._recorded
    model._recorded = None
    g = drive.grad.detach()
    with torch.no_grad():
        r_prev = torch.cat([torch.relu(model.x0).expand_as(rates[0])[None], rates[:-1]], dim=0)
        active = (r_prev > 0).to(g.dtype)
        alpha = model.alpha
        w = model.recurrent_weights()
        n = w.shape[0]
        g2, act2 = g.reshape(-1, n), active.reshape(-1, n)
        n_steps, batch = g.shape[0], g.shape[1]
        den_all = g2.pow(2).sum(-1)
        ok = den_all >= bound
        norm = ok.to(g.dtype).reshape(n_steps, batch).mean(1).sum().clamp_min(1e-12)
        # Steps with |g_t|^2 < bound (e.g. the padding after a short trial's end) add nothing to
        # omega or to its gradient: work only on the others.
        rows = ok.nonzero().squeeze(1)
        g2, act2, den = g2[rows], act2[rows], den_all[rows]
        back = torch.addcmul(g2 * (1.0 - alpha), g2 @ w, act2, value=alpha)
        ratio = back.pow(2).sum(-1) / den
        omega = (ratio - 1.0).pow(2).sum() / (batch * norm)
        if lambda_omega > 0:
            # d omega / d back = 2 (ratio - 1) / (den B Z) * 2 back; back depends on W through
            # alpha (g W) * active, so d omega / dW = alpha g^T (d omega / d back * active).
            coef = 4.0 * (ratio - 1.0) / (den * batch * norm)
            grad_w = alpha * g2.t() @ (back * coef[:, None] * act2)
            grad = grad_w * model.signs[None, :] * model.rec_mask * (model.w_rec > 0).to(g.dtype)
            if model.w_rec.grad is None:
                model.w_rec.grad = lambda_omega * grad
            else:
                model.w_rec.grad.add_(grad, alpha=lambda_omega)
    return float(omega.detach())


def song_update(optimizer: torch.optim.Optimizer, *, lambda_omega: float = 2.0,
                clip_grad: float = 1.0):
    """An ``update_fn`` for :func:`utils.training.train`: the paper's update for the task's batches.

    Loss: squared error between outputs and targets where ``batch.mask`` is 1, divided by the
    mask's sum; then the vanishing-gradient regulariser's gradient (weight ``lambda_omega``) is
    added to the recurrent weights' gradient, the whole gradient is clipped to norm ``clip_grad``,
    and ``optimizer`` takes a step. Records ``loss`` and ``omega``.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    lambda_omega = check_real("lambda_omega", lambda_omega, low=0.0)
    clip_grad = check_real("clip_grad", clip_grad, low=0.0, low_open=True)

    def update(model: EIRateRNN, batch, step: int) -> tuple[float, dict[str, float]]:
        outputs, _ = model(batch.inputs)
        loss = masked_squared_error(outputs, batch.targets, batch.mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        omega = vanishing_gradient_regulariser(model, lambda_omega)
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        return float(loss.detach()), {"omega": omega}

    return update


def masked_squared_error(outputs: torch.Tensor, targets: torch.Tensor,
                         mask: torch.Tensor) -> torch.Tensor:
    """``sum(mask * (outputs - targets)^2) / sum(mask)``: the paper's error (Song et al. eq. 5)."""
    if outputs.shape != targets.shape or outputs.shape != mask.shape:
        raise ValueError(f"outputs, targets and mask must have equal shapes, got "
                         f"{tuple(outputs.shape)}, {tuple(targets.shape)}, {tuple(mask.shape)}")
    return ((outputs - targets) ** 2 * mask).sum() / mask.sum().clamp_min(1.0)
