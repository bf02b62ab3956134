"""Self-checks for the labs.

Each exercise in a lab is followed by a self-check, e.g. ``check_sign_matrix(sign_matrix)``, which
prints one clear line: a pass, a failure with a hint, or "not implemented yet". Checks never
raise, so an unfinished exercise never stops the rest of the notebook; :func:`use_or_reference`
then lets later cells fall back to the course's reference implementation and says so.

Writing a check (one module per chapter, e.g. :mod:`utils.checks.architecture`)::

    @self_check("Exercise 1.1: the sign matrix D", hint="Put +1 for excitatory, -1 ...")
    def check_sign_matrix(fn):
        got = fn(5, 0.8)
        expect_close(got, torch.diag(torch.tensor([1., 1, 1, 1, -1])), "sign_matrix(5, 0.8)")

The decorated function takes the student's function and returns a :class:`CheckResult`.
"""

from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..validation import as_numpy

__all__ = [
    "CheckResult",
    "CheckFailure",
    "self_check",
    "use_or_reference",
    "expect",
    "expect_close",
    "expect_shape",
    "PASS",
    "FAIL",
    "NOT_IMPLEMENTED",
    "ERROR",
]

PASS, FAIL, NOT_IMPLEMENTED, ERROR = "pass", "fail", "not implemented", "error"
_SYMBOL = {PASS: "✅ PASS", FAIL: "❌ FAIL", NOT_IMPLEMENTED: "⏳ NOT IMPLEMENTED YET", ERROR: "❌ ERROR"}


class CheckFailure(AssertionError):
    """Raised inside a check when the student's answer is wrong; the message says how."""


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one self-check: ``status`` is one of pass, fail, not implemented, error."""

    name: str
    status: str
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        line = f"{_SYMBOL[self.status]}  {self.name}"
        return f"{line}\n    {self.message}" if self.message else line

    def __bool__(self) -> bool:
        return self.passed


def self_check(name: str, hint: str = "") -> Callable[[Callable[[Any], None]], Callable[..., CheckResult]]:
    """Turn a test ``test(fn)`` that raises :class:`CheckFailure` into a never-raising check.

    The returned function ``check(fn, *, quiet=False) -> CheckResult`` prints the result unless
    ``quiet``. ``hint`` is added to failure messages.
    """

    def decorate(test: Callable[[Any], None]) -> Callable[..., CheckResult]:
        @functools.wraps(test)
        def check(fn: Any, *, quiet: bool = False) -> CheckResult:
            result = _run(name, hint, test, fn)
            if not quiet:
                print(result)
            return result

        check.check_name = name  # type: ignore[attr-defined]
        return check

    return decorate


def _run(name: str, hint: str, test: Callable[[Any], None], fn: Any) -> CheckResult:
    if not callable(fn):
        return CheckResult(name, ERROR, f"expected a function, got {type(fn).__name__}.")
    try:
        test(fn)
    except NotImplementedError:
        return CheckResult(name, NOT_IMPLEMENTED,
                           "Replace the `raise NotImplementedError` line with your code, then "
                           "re-run this cell. Until then later cells use the reference.")
    except CheckFailure as err:
        return CheckResult(name, FAIL, _join(str(err), hint))
    except Exception as err:  # the student's code raised: report it, never propagate
        where = traceback.extract_tb(err.__traceback__)[-1]
        return CheckResult(name, ERROR, _join(
            f"your code raised {type(err).__name__}: {err} (line {where.lineno} of {where.name})",
            hint))
    return CheckResult(name, PASS)


def _join(message: str, hint: str) -> str:
    return f"{message}\n    Hint: {hint}" if hint else message


def use_or_reference(fn: Callable, check: Callable[..., CheckResult], reference: Callable,
                     *, quiet: bool = False) -> Callable:
    """Return ``fn`` if it passes ``check``, otherwise ``reference`` (and say which is used)."""
    result = check(fn, quiet=True)
    label = getattr(check, "check_name", "exercise")
    if result.passed:
        if not quiet:
            print(f"Using your implementation ({label}).")
        return fn
    if not quiet:
        print(f"Using the reference implementation for {label} (yours: {result.status}).")
    return reference


# --- assertion helpers used by the checks ------------------------------------------------------

def expect(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailure(message)


def expect_shape(got: Any, shape: tuple[int, ...], what: str) -> None:
    """Fail unless ``got`` has exactly ``shape``."""
    got_shape = tuple(getattr(got, "shape", ()))
    if not hasattr(got, "shape"):
        raise CheckFailure(f"{what} should be a tensor/array of shape {shape}, got {type(got).__name__}")
    expect(got_shape == tuple(shape), f"{what} should have shape {tuple(shape)}, got {got_shape}")


def expect_close(got: Any, expected: Any, what: str, *, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail unless ``got`` equals ``expected`` elementwise within tolerances (shapes must match)."""
    exp = as_numpy(expected, float)
    expect_shape(got, exp.shape, what)
    g = as_numpy(got, float)
    if not np.allclose(g, exp, atol=atol, rtol=rtol):
        diff = np.abs(g - exp)
        idx = np.unravel_index(int(diff.argmax()), diff.shape) if diff.ndim else ()
        raise CheckFailure(f"{what} differs from the expected value: largest difference "
                           f"{diff.max():.3g} at index {tuple(int(i) for i in idx)} "
                           f"(got {g[idx]:.4g}, expected {exp[idx]:.4g})")
