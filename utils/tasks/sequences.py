"""Sequence tasks of chapter 9: a pulse in, a sequence of Gaussian bumps out.

All tasks are time-major, ``dt`` ms per step, and come as a :class:`SequenceBatch`:

- :func:`pulse_sequence_batch`: a sudden pulse with an exponentially decaying tail at a random
  onset; ``n_outputs`` outputs that peak one after another (Gaussian bumps) a fixed time after the
  onset. With ``n_sequences = K > 1`` the pulse's magnitude, ``(k + 1) / K``, selects which of K
  groups of outputs must play its sequence; the other groups stay at zero.
- :func:`continual_batch`: the two tasks of the continual-learning experiment. Task ``"A"``: a
  decaying exponential times a sinusoid in, the bumps in forward order out; task ``"B"``: an
  increasing exponential times a sinusoid of another frequency and amplitude in, the bumps in
  reversed order out. ``context=True`` adds two input channels that say which task is on (a
  constant one-hot task cue), one of the chapter's remedies for forgetting.

:func:`sequence_loss` is the ``loss_fn`` of :func:`utils.training.train` for these tasks (mean
squared error, R^2 recorded); with ``heads=n`` each task (the batch's ``labels``) is read from its
own group of ``n`` outputs -- a separate readout per task, the other remedy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..validation import check_bool, check_choice, check_int, check_real
from .batch import Batch, per_trial, shared

__all__ = ["SequenceBatch", "bump_targets", "pulse_sequence_batch", "continual_batch",
           "CONTINUAL_TASKS", "r2_score", "head_outputs", "sequence_loss", "silent_outputs"]


@dataclass
class SequenceBatch(Batch):
    """A batch of sequence trials, time-major (a :class:`~utils.tasks.batch.Batch`).

    Attributes:
        inputs: (time, batch, n_input) input signals.
        targets: (time, batch, n_output) target outputs (Gaussian bumps, zero elsewhere).
        onsets: (batch,) onset step of each trial's input.
        labels: (batch,) long tensor: which sequence (or task) each trial asks for.
        dt: step in ms.
    """

    onsets: torch.Tensor = per_trial()
    labels: torch.Tensor = per_trial()
    dt: float = shared()


def bump_targets(onsets: torch.Tensor, n_steps: int, dt: float, n_outputs: int, *,
                 first_peak: float = 200.0, spacing: float = 60.0, width: float = 40.0,
                 reverse: bool = False) -> torch.Tensor:
    """Gaussian bumps ``exp(-(t - c_i)^2 / (2 width^2))`` with centres ``c_i = onset + first_peak
    + i * spacing`` (ms); ``reverse`` plays them in reversed order. Shape (n_steps, batch, n_outputs)."""
    n_steps = check_int("n_steps", n_steps, min_value=1)
    n_outputs = check_int("n_outputs", n_outputs, min_value=1)
    dt = check_real("dt", dt, low=0.0, low_open=True)
    width = check_real("width", width, low=0.0, low_open=True)
    t = torch.arange(n_steps, dtype=torch.float32)[:, None, None] * dt
    order = torch.arange(n_outputs, dtype=torch.float32)
    if reverse:
        order = order.flip(0)
    centres = onsets.float()[None, :, None] * dt + first_peak + order[None, None, :] * spacing
    return torch.exp(-0.5 * ((t - centres) / width) ** 2)


def _onsets(batch_size, onset, dt, generator):
    lo, hi = (int(round(o / dt)) for o in onset)
    if not 0 <= lo <= hi:
        raise ValueError(f"onset must be a pair (earliest, latest) in ms with 0 <= earliest <= latest, got {onset}")
    return torch.randint(lo, hi + 1, (batch_size,), generator=generator)


def pulse_sequence_batch(batch_size: int, *, n_sequences: int = 1, n_outputs: int = 10,
                         n_steps: int = 60, dt: float = 20.0, onset: tuple[float, float] = (100.0, 300.0),
                         tail: float = 100.0, first_peak: float = 200.0, spacing: float | None = None,
                         width: float = 40.0, labels: torch.Tensor | None = None,
                         n_channels: int | None = None,
                         generator: torch.Generator | None = None) -> SequenceBatch:
    """Trials of the pulse-to-sequence task (chapter 9).

    Input: ``u(t) = m exp(-(t - t_0) / tail)`` for ``t >= t_0`` (a sudden pulse with an exponential
    tail), onset ``t_0`` uniform in ``onset`` (ms). With ``n_sequences = K`` the magnitude is
    ``m = (k + 1) / K`` for sequence ``k`` (drawn uniformly unless ``labels`` is given) and the
    targets have ``K * n_outputs`` channels: group ``k`` plays the bumps, the others stay at zero.
    ``spacing`` (ms between peaks) defaults to spreading the peaks over the time left after the
    latest onset. ``n_channels`` (>= ``K * n_outputs``) pads the targets with channels that stay at
    zero, so that networks trained on different K share one output layer size.
    """
    batch_size = check_int("batch_size", batch_size, min_value=1)
    n_sequences = check_int("n_sequences", n_sequences, min_value=1)
    n_outputs = check_int("n_outputs", n_outputs, min_value=1)
    n_steps = check_int("n_steps", n_steps, min_value=2)
    dt = check_real("dt", dt, low=0.0, low_open=True)
    tail = check_real("tail", tail, low=0.0, low_open=True)
    first_peak = check_real("first_peak", first_peak, low=0.0)
    if spacing is None:
        room = n_steps * dt - onset[1] - first_peak - 2 * width
        spacing = room / max(n_outputs - 1, 1)
    spacing = check_real("spacing", spacing, low=0.0, low_open=True)
    onsets = _onsets(batch_size, onset, dt, generator)
    if labels is None:
        labels = torch.randint(0, n_sequences, (batch_size,), generator=generator)
    else:
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != (batch_size,) or labels.min() < 0 or labels.max() >= n_sequences:
            raise ValueError(f"labels must be a ({batch_size},) tensor of sequence indices in "
                             f"[0, {n_sequences})")
    t = torch.arange(n_steps, dtype=torch.float32)[:, None]
    since = (t - onsets[None, :].float()) * dt
    magnitude = (labels.float() + 1.0) / n_sequences
    u = torch.where(since >= 0, torch.exp(-since.clamp(min=0) / tail), torch.zeros(()))
    inputs = (u * magnitude[None, :])[..., None]
    bumps = bump_targets(onsets, n_steps, dt, n_outputs, first_peak=first_peak, spacing=spacing,
                         width=width)
    targets = torch.zeros(n_steps, batch_size, n_sequences * n_outputs)
    group = torch.nn.functional.one_hot(labels, n_sequences).float()  # (B, K)
    targets = (bumps[:, :, None, :] * group[None, :, :, None]).reshape(n_steps, batch_size, -1)
    if n_channels is not None:
        n_channels = check_int("n_channels", n_channels, min_value=n_sequences * n_outputs)
        targets = torch.nn.functional.pad(targets, (0, n_channels - n_sequences * n_outputs))
    return SequenceBatch(inputs, targets, onsets, labels, dt)


#: The two tasks of the continual-learning experiment: input envelope time constant (ms, negative
#: for a growing exponential), frequency (Hz) and amplitude of the oscillation, and whether the
#: bumps play in reversed order.
CONTINUAL_TASKS = {
    "A": {"envelope": 300.0, "frequency": 3.0, "amplitude": 1.0, "reverse": False},
    "B": {"envelope": -600.0, "frequency": 5.0, "amplitude": 0.5, "reverse": True},
}


def continual_batch(batch_size: int, task: str, *, context: bool = False, n_outputs: int = 10,
                    n_steps: int = 60, dt: float = 20.0, onset: tuple[float, float] = (100.0, 300.0),
                    first_peak: float = 200.0, spacing: float | None = None, width: float = 40.0,
                    input_length: float = 600.0,
                    generator: torch.Generator | None = None) -> SequenceBatch:
    """Trials of task ``"A"`` or ``"B"`` of the continual-learning experiment (chapter 9).

    The input, on for ``input_length`` ms from the onset, is ``a exp(-s / envelope) cos(2 pi f s)``
    with ``s`` the time since onset (``envelope < 0``: a growing exponential; both start with a
    deflection of size ``a`` at the onset); see :data:`CONTINUAL_TASKS`. The targets are the bumps of
    :func:`pulse_sequence_batch`, reversed in task B. ``context=True`` appends two channels, a
    constant one-hot cue of the task (1, 0) for A and (0, 1) for B, for the whole trial.
    """
    batch_size = check_int("batch_size", batch_size, min_value=1)
    check_choice("task", task, list(CONTINUAL_TASKS))
    check_bool("context", context)
    n_steps = check_int("n_steps", n_steps, min_value=2)
    dt = check_real("dt", dt, low=0.0, low_open=True)
    input_length = check_real("input_length", input_length, low=0.0, low_open=True)
    spec = CONTINUAL_TASKS[task]
    if spacing is None:
        room = n_steps * dt - onset[1] - first_peak - 2 * width
        spacing = room / max(n_outputs - 1, 1)
    onsets = _onsets(batch_size, onset, dt, generator)
    t = torch.arange(n_steps, dtype=torch.float32)[:, None]
    s = (t - onsets[None, :].float()) * dt
    on = (s >= 0) & (s < input_length)
    env = spec["envelope"]
    envelope = torch.exp(-s / env)
    wave = spec["amplitude"] * envelope * torch.cos(2 * math.pi * spec["frequency"] * s / 1000.0)
    u = torch.where(on, wave, torch.zeros(()))[..., None]
    if context:
        cue = torch.zeros(n_steps, batch_size, 2)
        cue[..., 0 if task == "A" else 1] = 1.0
        u = torch.cat([u, cue], dim=-1)
    targets = bump_targets(onsets, n_steps, dt, n_outputs, first_peak=first_peak, spacing=spacing,
                           width=width, reverse=spec["reverse"])
    labels = torch.full((batch_size,), 0 if task == "A" else 1, dtype=torch.long)
    return SequenceBatch(u, targets, onsets, labels, dt)


def r2_score(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Coefficient of determination ``1 - SSE / SST`` over all steps, trials and outputs, with
    ``SST`` taken around each output's own mean (1 = perfect, 0 = as good as each output's
    constant mean, negative = worse)."""
    if not isinstance(outputs, torch.Tensor) or not isinstance(targets, torch.Tensor) \
            or outputs.shape != targets.shape:
        raise ValueError("outputs and targets must be tensors of the same shape (time, batch, n_output)")
    outputs, targets = outputs.detach(), targets.detach()
    sse = (outputs - targets).pow(2).sum()
    sst = (targets - targets.mean(dim=tuple(range(targets.dim() - 1)), keepdim=True)).pow(2).sum()
    return float(1.0 - sse / sst.clamp(min=1e-12))


def head_outputs(outputs: torch.Tensor, labels: torch.Tensor, n_per_head: int) -> torch.Tensor:
    """The outputs of each trial's own head: channels ``labels[b] * n_per_head`` onwards.

    ``outputs`` (time, batch, K * n_per_head) -> (time, batch, n_per_head)."""
    n_per_head = check_int("n_per_head", n_per_head, min_value=1)
    T, B, n = outputs.shape
    if n % n_per_head or labels.shape != (B,) or labels.max() * n_per_head >= n:
        raise ValueError(f"outputs' last axis ({n}) must hold a head of {n_per_head} for every label")
    return outputs.reshape(T, B, n // n_per_head, n_per_head)[:, torch.arange(B), labels]


def sequence_loss(model: torch.nn.Module, batch: SequenceBatch, *, heads: int | None = None
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """``loss_fn`` for :func:`utils.training.train`: mean squared error, with the batch's R^2.

    ``heads=n``: each trial is scored on its own group of ``n`` outputs (:func:`head_outputs`),
    i.e. a separate readout per task; ``None``: all outputs against all targets."""
    outputs, _ = model(batch.inputs)
    if heads is not None:
        outputs = head_outputs(outputs, batch.labels, heads)
    loss = (outputs - batch.targets).pow(2).mean()
    return loss, {"r2": r2_score(outputs, batch.targets)}


@torch.no_grad()
def silent_outputs(model: torch.nn.Module, inputs: torch.Tensor, threshold: float = 0.05) -> int:
    """Number of outputs that stay below ``threshold`` on every time step of every trial of
    ``inputs`` (chapter 9: a rectified output unit below threshold gets no gradient and stays
    silent). For a :class:`~utils.models.ensemble.RateRNNEnsemble`, the first member's outputs."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        raise ValueError("inputs must be a tensor of shape (time, batch, n_input)")
    threshold = check_real("threshold", threshold)
    n = inputs.shape[1]
    out, _ = model(inputs.repeat(1, getattr(model, "n_members", 1), 1))
    return int((out[:, :n].amax(dim=(0, 1)) < threshold).sum())
