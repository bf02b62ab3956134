r"""The leaky tanh rate network of chapter 3 (the network RFLO trains; Murray 2019).

.. math::

    u_t = W h_{t-1} + W^{in} x_t,\qquad h_t = h_{t-1} + \alpha\,(-h_{t-1} + \tanh u_t),
    \qquad y_t = W^{out} h_t,\qquad \alpha = dt / \tau .
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_int, check_real, check_tensor_shape
from .base import check_loaded_buffers, finite, set_interface_sizes

__all__ = ["LeakyTanhRNN"]


class LeakyTanhRNN(nn.Module):
    """Murray's (2019) leaky tanh rate network, trainable by BPTT or by RFLO.

    ``u_t = W h_{t-1} + W_in x_t``, ``h_t = h_{t-1} + (tanh(u_t) - h_{t-1}) / tau``,
    ``y_t = W_out h_t``, with ``alpha = dt / tau`` (``dt = 1`` by default, so that ``tau`` counts
    time steps). ``feedback`` is the fixed random matrix B
    (n_units, n_output) that carries the output error to the units under RFLO.

    Args:
        n_input, n_units, n_output: sizes.
        tau: time constant (>= dt); dt: time step in the same unit (default 1: tau in steps).
        gain: recurrent weights start as N(0, gain^2 / n_units) (gain > 1: rich dynamics).
        readout_scale: the readout starts as N(0, readout_scale^2 / n_units) (0: all zeros).
        seed: seed of every initial weight and of B (same seed, same network for both rules).
    """

    def __init__(self, n_input: int, n_units: int, n_output: int, tau: float = 5.0, *,
                 dt: float = 1.0, gain: float = 1.5, readout_scale: float = 1.0,
                 seed: int = 0) -> None:
        super().__init__()
        set_interface_sizes(self, n_input, n_units, n_output, tau=tau, dt=dt)
        gain = check_real("gain", gain, low=0.0)
        readout_scale = check_real("readout_scale", readout_scale, low=0.0)
        seed = check_int("seed", seed, min_value=0)
        gen = torch.Generator().manual_seed(seed)
        n = self.n_units
        self.weight = nn.Parameter(gain * torch.randn(n, n, generator=gen) / math.sqrt(n))
        self.input_weight = nn.Parameter(torch.randn(n, self.n_input, generator=gen))
        self.readout = nn.Parameter(readout_scale * torch.randn(self.n_output, n, generator=gen)
                                    / math.sqrt(n))
        self.register_buffer("feedback", torch.randn(n, self.n_output, generator=gen) / math.sqrt(n))

    @property
    def alpha(self) -> float:
        """``dt / tau``, the fraction of the way a unit moves towards its input each step."""
        return self.dt / self.tau

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        check_loaded_buffers(state_dict, prefix, {"feedback": finite})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def recurrent_weights(self) -> torch.Tensor:
        """The recurrent weights ``W[post, pre]`` (unconstrained in this network)."""
        return self.weight

    def _check_inputs(self, inputs: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or inputs.shape[-1] != self.n_input:
            raise ValueError(f"inputs must be a tensor of shape (time, batch, {self.n_input}), got "
                             f"{tuple(inputs.shape) if hasattr(inputs, 'shape') else type(inputs).__name__}")
        if h0 is None:
            return inputs.new_zeros(inputs.shape[1], self.n_units)
        check_tensor_shape("h0", h0, (inputs.shape[1], self.n_units))
        return h0

    def forward(self, inputs: torch.Tensor, h0: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network; returns ``(outputs, states)`` of shapes (T, B, n_out), (T, B, N)."""
        h = self._check_inputs(inputs, h0).to(self.weight.dtype)
        inputs = inputs.to(self.weight.dtype)  # e.g. float64 from torch.from_numpy
        drive = inputs @ self.input_weight.t()
        w_t = self.weight.t()
        a = self.alpha
        states = []
        for t in range(inputs.shape[0]):
            h = torch.lerp(h, torch.tanh(torch.addmm(drive[t], h, w_t)), a)
            states.append(h)
        states_t = torch.stack(states)
        return states_t @ self.readout.t(), states_t
