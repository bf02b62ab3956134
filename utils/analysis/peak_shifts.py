"""Peak times of sequential activity and how perturbing one inhibitory neuron shifts them (chapter 9).

Adler et al. (2019) found that inhibitory interneurons shape *when* pyramidal neurons fire in a
learned sequence. In a trained E/I network we perturb one inhibitory column of the recurrent
matrix (all outgoing synapses of one interneuron, scaled by a factor) and measure how far each
output's peak moves: ``shift_i = (t_i,orig - t_i,perturbed)`` in ms, positive when the peak comes
earlier.

The first-order (linearised) theory: with ``W -> W + eps dW`` the trajectory changes by
``eps dx(t)``, where ``dx`` obeys the dynamics linearised along the unperturbed trajectory,

.. math::

    dx_t = (1 - \\alpha)\\, dx_{t-1} + \\alpha \\big( W (m_{t-1} \\odot dx_{t-1}) + dW\\, r_{t-1} \\big),
    \\qquad m_t = [x_t > 0],

and an output's peak ``t*`` (where ``y' = 0``, ``y'' < 0``) moves by ``dt* = -eps dy'(t*) / y''(t*)``:
its sign is the sign of ``eps`` times the *slope* of the output's response ``dy`` at the peak.
:func:`linear_response` integrates ``dx`` and :func:`predicted_shift` turns it into predicted shifts.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..models.rate import leaky_rnn
from ..validation import check_int, check_real

__all__ = ["peak_times", "peak_shift", "scale_column", "run_with_weights", "column_sweep",
           "linear_response", "predicted_shift"]


def peak_times(outputs: torch.Tensor, dt: float, *, interpolate: bool = True) -> torch.Tensor:
    """Time (ms) of each trace's maximum along axis 0: ``outputs`` (time, ...) -> (...).

    With ``interpolate`` the peak is refined between steps by the vertex of the parabola through
    the largest sample and its two neighbours (no refinement at the first or last step), so that
    shifts smaller than one step ``dt`` are measurable.
    """
    if not isinstance(outputs, torch.Tensor) or outputs.dim() < 1 or outputs.shape[0] < 1:
        raise ValueError("outputs must be a tensor of shape (time, ...)")
    dt = check_real("dt", dt, low=0.0, low_open=True)
    y = outputs.detach().to(torch.float64)
    k = y.argmax(dim=0)
    t = k.to(torch.float64)
    if interpolate and y.shape[0] >= 3:
        kc = k.clamp(1, y.shape[0] - 2)
        y0 = y.gather(0, (kc - 1)[None]).squeeze(0)
        y1 = y.gather(0, kc[None]).squeeze(0)
        y2 = y.gather(0, (kc + 1)[None]).squeeze(0)
        curv = y0 - 2 * y1 + y2
        inner = (k == kc) & (curv < 0)
        offset = torch.where(inner, 0.5 * (y0 - y2) / torch.where(inner, curv, -torch.ones_like(curv)),
                             torch.zeros_like(curv))
        t = t + offset.clamp(-0.5, 0.5)
    return t * dt


def peak_shift(original: torch.Tensor, perturbed: torch.Tensor, dt: float) -> torch.Tensor:
    """``peak_times(original) - peak_times(perturbed)`` in ms (positive: the peak moved earlier)."""
    if not isinstance(original, torch.Tensor) or not isinstance(perturbed, torch.Tensor) \
            or original.shape != perturbed.shape:
        raise ValueError("original and perturbed must be tensors of the same shape (time, ...)")
    return peak_times(original, dt) - peak_times(perturbed, dt)


def scale_column(weights: torch.Tensor, column: int, factor: float) -> torch.Tensor:
    """A copy of ``weights`` (N, N) with column ``column`` (one presynaptic unit's outgoing
    synapses) multiplied by ``factor`` (>= 0, so Dale's law still holds)."""
    if not isinstance(weights, torch.Tensor) or weights.dim() != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError("weights must be a square tensor (N, N)")
    column = check_int("column", column, min_value=0, max_value=weights.shape[1] - 1)
    factor = check_real("factor", factor, low=0.0)
    out = weights.detach().clone()
    out[:, column] *= factor
    return out


def _outputs(model: nn.Module, rates: torch.Tensor) -> torch.Tensor:
    out = rates[..., : model.n_exc] @ model.readout_matrix().t()
    if model.readout is not None:
        out = out + model.readout.bias
    return out


@torch.no_grad()
def run_with_weights(model: nn.Module, u: torch.Tensor, weights: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise-free run of a :class:`~utils.models.rate.RateRNN` with the recurrent weights replaced
    by ``weights`` (N, N) (its own if None): ``(outputs, rates)`` for inputs ``u`` (time, batch, n_input)."""
    w = model.recurrent_weights().detach() if weights is None else weights
    drive = model.alpha * model.input_drive(u)
    rates = leaky_rnn(drive, w, None, model.alpha)
    return _outputs(model, rates), rates


@torch.no_grad()
def column_sweep(model: nn.Module, u: torch.Tensor, columns: Sequence[int],
                 factors: Sequence[float]) -> torch.Tensor:
    """Peak shifts (ms) of every output when column ``c`` of the recurrent weights is scaled by
    ``f``, for every pair: shape (len(columns), len(factors), batch, n_output)."""
    base, _ = run_with_weights(model, u)
    w = model.recurrent_weights().detach()
    shifts = torch.empty(len(columns), len(factors), *base.shape[1:], dtype=torch.float64)
    for i, c in enumerate(columns):
        for j, f in enumerate(factors):
            out, _ = run_with_weights(model, u, scale_column(w, c, f))
            shifts[i, j] = peak_shift(base, out, model.dt)
    return shifts


@torch.no_grad()
def linear_response(model: nn.Module, u: torch.Tensor, delta_w: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``y`` and their first-order change ``dy`` (per unit ``eps``) when the recurrent
    weights become ``W + eps * delta_w``, from the linearised dynamics (module docstring).
    Both of shape (time, batch, n_output)."""
    w = model.recurrent_weights().detach()
    if delta_w.shape != w.shape:
        raise ValueError(f"delta_w must have the recurrent weights' shape {tuple(w.shape)}")
    a = model.alpha
    drive = a * model.input_drive(u)
    rates = leaky_rnn(drive, w, None, a)
    active = (rates > 0).to(rates.dtype)
    dx = torch.zeros_like(rates[0])
    dm_prev = torch.zeros_like(rates[0])      # m_{t-1} * dx_{t-1}
    r_prev = torch.zeros_like(rates[0])
    d_rates = torch.empty_like(rates)
    for t in range(rates.shape[0]):
        dx = (1 - a) * dx + a * (dm_prev @ w.t() + r_prev @ delta_w.t())
        dm_prev = active[t] * dx
        d_rates[t] = dm_prev
        r_prev = rates[t]
    y = _outputs(model, rates)
    dy = d_rates[..., : model.n_exc] @ model.readout_matrix().t()
    return y, dy


def predicted_shift(outputs: torch.Tensor, d_outputs: torch.Tensor, dt: float,
                    eps: float) -> torch.Tensor:
    """First-order peak shifts (ms, positive = earlier) for a perturbation of size ``eps``:
    ``-eps * d t*/d eps``, with the derivative of :func:`peak_times` taken along ``d_outputs``."""
    eps = check_real("eps", eps)
    h = 1e-4
    y = outputs.detach().to(torch.float64)
    dy = d_outputs.detach().to(torch.float64)
    scale = float(y.abs().max().clamp(min=1e-12) / dy.abs().max().clamp(min=1e-12))
    slope = (peak_times(y + h * scale * dy, dt) - peak_times(y - h * scale * dy, dt)) / (2 * h * scale)
    return -eps * slope
