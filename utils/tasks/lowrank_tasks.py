"""The two tasks of the low-rank project (chapters 10-11, after Dubreuil et al. 2022), their loss
and their score.

:func:`decision_batch`: perceptual decision making (a noisy stimulus, report the sign of its mean).
:func:`working_memory_batch`: parametric working memory (compare two vibration frequencies separated
by a delay, after Romo et al. 1999). Batches are :class:`LowRankBatch` and
:class:`WorkingMemoryBatch` (the course's :class:`~utils.tasks.batch.Batch`): time-major ``inputs``
(T, B, K), one target per trial (B,) and the trial parameters; fields can also be read by key,
``batch["inputs"]``, like the dicts the labs build. :func:`lowrank_loss` is the squared error of the readout
over the last steps (the decision epoch); :func:`sign_accuracy` scores the sign of the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..validation import check_generator, check_int, check_real, check_tensor_shape
from .batch import Batch, per_trial

__all__ = ["LowRankBatch", "WorkingMemoryBatch", "DECISION_STRENGTHS", "WM_FREQUENCIES", "decision_batch", "working_memory_batch",
           "working_memory_grid", "lowrank_loss", "sign_accuracy", "check_lowrank_batch"]


@dataclass
class LowRankBatch(Batch):
    """A batch of perceptual-decision trials (chapter 10): ``inputs`` (T, B, 1), ``targets``
    (B,) in {-1, +1} (one answer per trial) and each trial's mean stimulus ``strengths`` (B,)."""

    targets: torch.Tensor = per_trial()
    strengths: torch.Tensor = per_trial()


@dataclass
class WorkingMemoryBatch(Batch):
    """A batch of parametric working-memory trials (chapter 11): ``inputs`` (T, B, 1),
    ``targets`` (B,) = ``(f1 - f2) / (fmax - fmin)``, the frequencies ``f1``, ``f2`` (B,) and the
    normalised stimuli ``u1``, ``u2`` (B,)."""

    targets: torch.Tensor = per_trial()
    f1: torch.Tensor = per_trial()
    f2: torch.Tensor = per_trial()
    u1: torch.Tensor = per_trial()
    u2: torch.Tensor = per_trial()


#: The ten stimulus strengths of the decision task: +-3.2/100 * {1, 2, 4, 8, 16}.
DECISION_STRENGTHS: tuple[float, ...] = tuple(
    s * 3.2 / 100.0 * c for s in (-1.0, 1.0) for c in (1, 2, 4, 8, 16))


#: The seven frequencies of the working-memory task (Hz, as in Romo et al.'s vibrotactile task).
WM_FREQUENCIES: tuple[float, ...] = (10.0, 14.0, 18.0, 22.0, 26.0, 30.0, 34.0)


def decision_batch(batch_size: int, *, strengths: Sequence[float] | torch.Tensor | None = None,
                   noise_std: float = 0.03, n_steps: int = 75, stim_on: int = 5, stim_off: int = 45,
                   generator: torch.Generator | None = None) -> LowRankBatch:
    """A batch of perceptual-decision trials (chapter 10).

    ``u(t) = ubar + xi(t)`` for ``stim_on <= t <= stim_off`` (both ends included) and ``xi(t)``
    otherwise, with white noise ``xi ~ N(0, noise_std^2)`` drawn anew at every step. Each trial's
    strength ``ubar`` is drawn uniformly from :data:`DECISION_STRENGTHS` (or from ``strengths``);
    the target is its sign.

    Args:
        batch_size: number of trials B (>= 1).
        strengths: the set of strengths to draw from (default :data:`DECISION_STRENGTHS`); no zero
            strength, its sign would be undefined.
        noise_std: standard deviation of the input noise per step (>= 0).
        n_steps: trial length T in steps (75 steps of 20 ms = 1.5 s).
        stim_on, stim_off: first and last step of the stimulus, ``0 <= stim_on <= stim_off < n_steps``.
        generator: a seeded ``torch.Generator`` for reproducible batches.

    Returns:
        a :class:`LowRankBatch`: ``inputs`` (T, B, 1), ``targets`` (B,) in {-1, +1} and
        ``strengths`` (B,).
    """
    batch_size = check_int("batch_size", batch_size, min_value=1)
    noise_std = check_real("noise_std", noise_std, low=0.0)
    n_steps = check_int("n_steps", n_steps, min_value=1)
    stim_on = check_int("stim_on", stim_on, min_value=0, max_value=n_steps - 1)
    stim_off = check_int("stim_off", stim_off, min_value=stim_on, max_value=n_steps - 1)
    check_generator("generator", generator)
    if strengths is None:
        strengths = DECISION_STRENGTHS
    levels = torch.as_tensor(strengths, dtype=torch.float32).flatten()
    if levels.numel() == 0 or not torch.isfinite(levels).all() or (levels == 0).any():
        raise ValueError(f"strengths must be a non-empty list of finite, non-zero numbers, got {strengths!r}")
    ubar = levels[torch.randint(levels.numel(), (batch_size,), generator=generator)]
    inputs = noise_std * torch.randn(n_steps, batch_size, 1, generator=generator)
    inputs[stim_on:stim_off + 1, :, 0] += ubar
    return LowRankBatch(inputs, torch.sign(ubar), ubar)


def working_memory_batch(batch_size: int, *, frequencies: Sequence[float] = WM_FREQUENCIES,
                         u1_on: int = 5, u1_off: int = 10, u2_on: int = 60, u2_off: int = 70,
                         n_decision: int = 5, generator: torch.Generator | None = None
                         ) -> WorkingMemoryBatch:
    """A batch of parametric working-memory trials (chapter 11).

    ``u(t) = u1`` for ``u1_on <= t <= u1_off``, ``u2`` for ``u2_on <= t <= u2_off`` and 0
    otherwise, with ``u_i = (f_i - (fmax + fmin)/2) / (fmax - fmin)`` and ``f1``, ``f2`` drawn
    independently and uniformly from ``frequencies``. The target is
    ``(f1 - f2) / (fmax - fmin)``, to be reported in the ``n_decision`` steps that follow the
    second stimulus; the trial has ``u2_off + 1 + n_decision`` steps (76 with the defaults, so
    the last 5 steps are exactly the decision epoch). No noise is added, as in the project's statement.

    For a delay curriculum, move the second stimulus earlier, e.g. ``u2_on=36, u2_off=46``
    (a delay of 25 steps after ``u1_off``).

    Returns:
        a :class:`WorkingMemoryBatch`: ``inputs`` (T, B, 1), ``targets`` (B,), ``f1`` (B,),
        ``f2`` (B,) and the normalised stimuli ``u1`` (B,), ``u2`` (B,).
    """
    batch_size = check_int("batch_size", batch_size, min_value=1)
    freqs = _check_frequencies(frequencies)
    timing = _check_timing(u1_on, u1_off, u2_on, u2_off, n_decision)
    check_generator("generator", generator)
    f1 = freqs[torch.randint(freqs.numel(), (batch_size,), generator=generator)]
    f2 = freqs[torch.randint(freqs.numel(), (batch_size,), generator=generator)]
    return _working_memory_trials(f1, f2, freqs, *timing)


def working_memory_grid(*, frequencies: Sequence[float] = WM_FREQUENCIES, u1_on: int = 5,
                        u1_off: int = 10, u2_on: int = 60, u2_off: int = 70, n_decision: int = 5
                        ) -> WorkingMemoryBatch:
    """Every ``(f1, f2)`` pair of ``frequencies`` once (49 trials by default), ordered by f1 then
    f2, with the keys and timing arguments of :func:`working_memory_batch` (chapter 11).

    The task has no noise, so one trial per pair measures a network exactly; accuracies over this
    grid weigh every pair equally, as uniform random draws of ``f1`` and ``f2`` do on average.
    """
    freqs = _check_frequencies(frequencies)
    timing = _check_timing(u1_on, u1_off, u2_on, u2_off, n_decision)
    k = freqs.numel()
    return _working_memory_trials(freqs.repeat_interleave(k), freqs.repeat(k), freqs, *timing)


def _check_frequencies(frequencies: Any) -> torch.Tensor:
    freqs = torch.as_tensor(frequencies, dtype=torch.float32).flatten()
    if freqs.numel() < 2 or not torch.isfinite(freqs).all() or freqs.max() == freqs.min():
        raise ValueError(f"frequencies must hold at least two different finite numbers, got {frequencies!r}")
    return freqs


def _check_timing(u1_on: int, u1_off: int, u2_on: int, u2_off: int, n_decision: int
                  ) -> tuple[int, int, int, int, int]:
    u1_on = check_int("u1_on", u1_on, min_value=0)
    u1_off = check_int("u1_off", u1_off, min_value=u1_on)
    u2_on = check_int("u2_on", u2_on, min_value=u1_off + 1)
    u2_off = check_int("u2_off", u2_off, min_value=u2_on)
    n_decision = check_int("n_decision", n_decision, min_value=1)
    return u1_on, u1_off, u2_on, u2_off, n_decision


def _working_memory_trials(f1: torch.Tensor, f2: torch.Tensor, freqs: torch.Tensor, u1_on: int,
                           u1_off: int, u2_on: int, u2_off: int, n_decision: int
                           ) -> WorkingMemoryBatch:
    fmin, fmax = float(freqs.min()), float(freqs.max())
    u1 = (f1 - (fmax + fmin) / 2) / (fmax - fmin)
    u2 = (f2 - (fmax + fmin) / 2) / (fmax - fmin)
    inputs = torch.zeros(u2_off + 1 + n_decision, f1.numel(), 1)
    inputs[u1_on:u1_off + 1, :, 0] = u1
    inputs[u2_on:u2_off + 1, :, 0] = u2
    return WorkingMemoryBatch(inputs, (f1 - f2) / (fmax - fmin), f1, f2, u1, u2)


def check_lowrank_batch(batch: Any) -> None:
    """Raise a :class:`TypeError` unless ``batch`` is a low-rank task batch: a
    :class:`LowRankBatch` / :class:`WorkingMemoryBatch`, or a dict with the same keys (as the labs
    build), with at least ``inputs`` and ``targets``."""
    if isinstance(batch, (LowRankBatch, WorkingMemoryBatch)):
        return
    if not isinstance(batch, dict) or "inputs" not in batch or "targets" not in batch:
        raise TypeError("batch must be a low-rank batch (LowRankBatch or WorkingMemoryBatch, or a "
                        "dict with 'inputs' (T, B, n_input) and 'targets' (B,)), as returned by "
                        "decision_batch or working_memory_batch")


def lowrank_loss(z: torch.Tensor, targets: torch.Tensor, loss_steps: int = 15) -> torch.Tensor:
    """Mean squared error between the readout ``z`` (T, B) and ``targets`` (B,) over the last
    ``loss_steps`` steps (the project's decision epoch)."""
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError(f"z must be a tensor of shape (time, batch), got "
                         f"{tuple(z.shape) if hasattr(z, 'shape') else type(z).__name__}")
    check_tensor_shape("targets", targets, (z.shape[1],))
    loss_steps = check_int("loss_steps", loss_steps, min_value=1, max_value=z.shape[0])
    return (z[-loss_steps:] - targets.to(z.dtype)[None]).pow(2).mean()


def sign_accuracy(z: torch.Tensor, targets: torch.Tensor, loss_steps: int = 15) -> float:
    """Fraction of trials whose mean readout over the last ``loss_steps`` steps has the sign of
    the target. Trials with a zero target (equal stimuli) have no correct sign and are skipped."""
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError("z must be a tensor of shape (time, batch)")
    check_tensor_shape("targets", targets, (z.shape[1],))
    loss_steps = check_int("loss_steps", loss_steps, min_value=1, max_value=z.shape[0])
    keep = targets != 0
    if not keep.any():
        raise ValueError("targets must contain at least one non-zero value to measure a sign accuracy")
    decision = z[-loss_steps:].mean(0)
    return (torch.sign(decision[keep]) == torch.sign(targets[keep])).float().mean().item()
