"""The one interface every recurrent model of the course follows (chapter 1 introduces it).

Written down once as a :class:`typing.Protocol`, so that training, analysis and plotting code can
take any of the course's networks:

- **constructor vocabulary**: ``n_input``, ``n_units``, ``n_output`` (sizes), ``tau`` (membrane
  time constant, ms) and ``dt`` (Euler step, ms); a model without a time constant of its own (a
  discrete-time GRU) documents what it does with them;
- ``forward(u) -> (outputs, states)`` with ``u`` of shape (time, batch, n_input), ``outputs`` of
  shape (time, batch, n_output) (a single-readout network may return (time, batch)) and
  ``states`` the units' activity, (time, batch, n_units);
- ``recurrent_weights()``: the effective (n_units, n_units) matrix ``W[post, pre]`` that the
  dynamics use, after every constraint (Dale's law, masks, a low-rank product).

The feed-forward networks of chapter 3 (the feedback-alignment MLP, the dendritic-error network)
have no recurrence and no time and are not recurrent models.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import torch

from ..validation import check_int, check_real

__all__ = ["RecurrentModel", "check_model_interface", "set_interface_sizes", "check_loaded_buffers",
           "fixed_buffer", "zeros_and_ones", "positive_finite", "finite"]


@runtime_checkable
class RecurrentModel(Protocol):
    """What every recurrent network of the course provides (see the module docstring)."""

    n_input: int
    n_units: int
    n_output: int
    tau: float
    dt: float

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network on inputs ``u`` (time, batch, n_input): ``(outputs, states)``."""
        ...

    def recurrent_weights(self) -> torch.Tensor:
        """The effective recurrent weights (n_units, n_units) used in the dynamics."""
        ...


def check_model_interface(model: object) -> None:
    """Raise :class:`TypeError` naming what ``model`` lacks of :class:`RecurrentModel`."""
    missing = [name for name in ("n_input", "n_units", "n_output", "tau", "dt", "forward",
                                 "recurrent_weights") if not hasattr(model, name)]
    if missing:
        raise TypeError(f"model must follow the course's model interface "
                        f"(utils.models.RecurrentModel); {type(model).__name__} lacks {missing}")


def set_interface_sizes(model: Any, n_input: int, n_units: int, n_output: int, *,
                        tau: float | None, dt: float) -> None:
    """Check the interface's constructor arguments and store them on ``model`` (every model calls
    this first): sizes are integers (``n_units >= 2``), ``dt > 0`` and, for a model with a time
    constant, ``dt <= tau`` (forward Euler is unstable beyond). ``tau=None`` means the model has
    none (a discrete-time GRU)."""
    model.n_input = check_int("n_input", n_input, min_value=1)
    model.n_units = check_int("n_units", n_units, min_value=2)
    model.n_output = check_int("n_output", n_output, min_value=1)
    model.dt = check_real("dt", dt, low=0.0, low_open=True)
    model.tau = None if tau is None else check_real("tau", tau, low=0.0, low_open=True)
    if model.tau is not None and model.dt > model.tau:
        raise ValueError(f"dt must satisfy 0 < dt <= tau (forward Euler is unstable beyond), "
                         f"got dt={model.dt:g} > tau={model.tau:g}")


def fixed_buffer(expected: torch.Tensor, meaning: str) -> Callable[[torch.Tensor], str | None]:
    """A rule for :func:`check_loaded_buffers`: the buffer must equal ``expected`` exactly (a
    buffer the constructor derives from the model's settings, e.g. the sign vector)."""
    expected = expected.detach().clone()

    def rule(value: torch.Tensor) -> str | None:
        if tuple(value.shape) != tuple(expected.shape) or not torch.equal(value.to(expected.dtype), expected):
            return f"must be {meaning} (fixed by the model's settings)"
        return None

    return rule


def zeros_and_ones(value: torch.Tensor) -> str | None:
    """A rule for :func:`check_loaded_buffers`: a 0/1 mask."""
    if not bool(((value == 0) | (value == 1)).all()):
        return "must contain only zeros and ones (a connectivity mask)"
    return None


def positive_finite(value: torch.Tensor) -> str | None:
    """A rule for :func:`check_loaded_buffers`: every entry finite and > 0."""
    if not bool((torch.isfinite(value) & (value > 0)).all()):
        return "must be finite and positive"
    return None


def finite(value: torch.Tensor) -> str | None:
    """A rule for :func:`check_loaded_buffers`: no inf or NaN."""
    if not bool(torch.isfinite(value).all()):
        return "must not contain inf or NaN"
    return None


def check_loaded_buffers(state_dict: Mapping[str, Any], prefix: str,
                         rules: Mapping[str, Callable[[torch.Tensor], str | None]]) -> None:
    """Refuse a ``state_dict`` whose buffers the model's constructor would refuse.

    Models call this from ``_load_from_state_dict`` (which ``load_state_dict`` calls for every
    submodule with its ``prefix``), *before* anything is copied, so a refused state leaves the
    model untouched. ``rules`` maps a buffer name to a function returning None (fine) or what is
    wrong. Raises ValueError naming the key.
    """
    for name, rule in rules.items():
        key = prefix + name
        if key not in state_dict:
            continue  # load_state_dict itself reports missing keys (strict=True)
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state_dict[{key!r}] must be a tensor, got {type(value).__name__}")
        problem = rule(value.detach())
        if problem is not None:
            raise ValueError(f"state_dict[{key!r}] {problem}; refusing to load it (the model is "
                             f"unchanged)")
