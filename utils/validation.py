"""Argument checks shared by the public functions of :mod:`utils`.

Every check raises :class:`TypeError` or :class:`ValueError` with a message that names the
argument and the values it may take, so that a student's typo ends in a clear sentence instead of a
stack trace deep inside PyTorch.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

__all__ = [
    "check_int",
    "check_real",
    "check_bool",
    "check_choice",
    "check_tensor_shape",
    "check_generator",
    "as_numpy",
    "as_float_array",
]


def check_int(name: str, value: Any, *, min_value: int | None = None,
              max_value: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer within ``[min_value, max_value]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as ``float`` if it is a finite real number in the given interval.

    ``low_open``/``high_open`` exclude the bounds. The message states the interval in
    mathematical notation, e.g. ``e_frac must lie in (0, 1), got 1.5``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    lo_b = "(" if low_open else "["
    hi_b = ")" if high_open else "]"
    interval = f"{lo_b}{'-inf' if low is None else _fmt(low)}, {'inf' if high is None else _fmt(high)}{hi_b}"
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must lie in {interval}, got {_fmt(value)}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must lie in {interval}, got {_fmt(value)}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_tensor_shape(name: str, value: Any, shape: tuple[int | None, ...]) -> Any:
    """Check that ``value`` is a torch tensor or numpy array of ``shape`` (None = any size)."""
    if not hasattr(value, "shape"):
        raise TypeError(f"{name} must be a tensor or array of shape {_shape(shape)}, "
                        f"got {type(value).__name__}")
    got = tuple(value.shape)
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        raise ValueError(f"{name} must have shape {_shape(shape)}, got {got}")
    return value


def _fmt(x: float) -> str:
    return f"{x:g}"


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def check_generator(name: str, value: Any) -> Any:
    """``value`` if it is a ``torch.Generator`` or None, else a :class:`TypeError` naming ``name``."""
    if value is None:
        return None
    import torch  # local: this module imports nothing heavy

    if not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(value).__name__}")
    return value


def as_numpy(value: Any, dtype: Any = None) -> Any:
    """``value`` (tensor, array, number or nested list) as a NumPy array, detached from any graph.

    With ``dtype`` (e.g. ``float``) the array is converted to it; without, a tensor keeps its dtype.
    """
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)


def as_float_array(name: str, value: Any, ndim: tuple[int, ...] | None = None) -> Any:
    """``value`` as a finite float64 NumPy array with ``ndim`` in the allowed numbers of dimensions.

    Raises :class:`TypeError` for non-numeric input and :class:`ValueError` for a wrong number of
    dimensions or a nan/inf entry, naming ``name``.
    """
    import numpy as np

    try:
        arr = as_numpy(value, float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array or tensor of real numbers, got "
                        f"{type(value).__name__}") from err
    if ndim is not None and arr.ndim not in ndim:
        allowed = " or ".join(str(d) for d in ndim)
        raise ValueError(f"{name} must have {allowed} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers (no nan or inf)")
    return arr
