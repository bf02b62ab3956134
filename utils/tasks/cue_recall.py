"""A memory task for the learning-rule chapter (3): recall the sign of a cue after a delay.

At the start of a trial a cue of value +1 or -1 is shown for a few steps on input channel 0; after
``delay`` steps with no input a "go" signal on channel 1 asks the network to output the cue's sign
for ``response_steps`` steps (target 0 before). The target is not a function of the current input:
at response time the only trace of the cue is in the network's state, so the task measures how
long a network can hold information, and whether a learning rule can teach it to hold it longer.
Time is in Euler steps, like ``tau`` of :class:`utils.models.LeakyTanhRNN`; RFLO's eligibility
traces forget on the time scale ``tau``, so delays well beyond ``tau`` probe RFLO's limitation.
"""

from __future__ import annotations

import torch

from ..validation import check_int, check_real
from .targets import TargetBatch

__all__ = ["CueRecallTask", "response_mse", "readout_only_mse"]


class CueRecallTask:
    """Recall the sign of a brief cue after ``delay`` silent steps.

    Args:
        n_units: size of the network's state (for the random initial states).
        delay: silent steps between the end of the cue and the go signal (>= 0).
        cue_steps, response_steps: durations of cue and response (>= 1).
        h0_std: standard deviation of the random initial states.
        seed: seed of the cue signs and initial states.

    ``batch(b)`` returns a :class:`~utils.tasks.targets.TargetBatch` with inputs (T, b, 2),
    targets (T, b, 1) and h0 (b, n_units); ``response`` is the slice of response steps.
    """

    n_input, n_output = 2, 1

    def __init__(self, n_units: int, delay: int, *, cue_steps: int = 3, response_steps: int = 5,
                 h0_std: float = 0.05, seed: int = 0) -> None:
        self.n_units = check_int("n_units", n_units, min_value=1)
        self.delay = check_int("delay", delay, min_value=0)
        self.cue_steps = check_int("cue_steps", cue_steps, min_value=1)
        self.response_steps = check_int("response_steps", response_steps, min_value=1)
        self.h0_std = check_real("h0_std", h0_std, low=0.0)
        self.n_steps = self.cue_steps + self.delay + self.response_steps
        self.response = slice(self.cue_steps + self.delay, self.n_steps)
        self._gen = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))

    def batch(self, batch_size: int) -> TargetBatch:
        """``batch_size`` trials with random cue signs and random initial states."""
        batch_size = check_int("batch_size", batch_size, min_value=1)
        sign = torch.randint(0, 2, (batch_size,), generator=self._gen).float() * 2 - 1
        inputs = torch.zeros(self.n_steps, batch_size, 2)
        targets = torch.zeros(self.n_steps, batch_size, 1)
        inputs[: self.cue_steps, :, 0] = sign
        inputs[self.response, :, 1] = 1.0
        targets[self.response, :, 0] = sign
        h0 = self.h0_std * torch.randn(batch_size, self.n_units, generator=self._gen)
        return TargetBatch(inputs, targets, h0)


@torch.no_grad()
def response_mse(model, task: CueRecallTask, n_trials: int = 1000) -> float:
    """Mean squared error of ``model`` over the response steps of ``n_trials`` new trials (the
    target is +-1 there, so 1.0 is the error of always answering 0)."""
    batch = task.batch(check_int("n_trials", n_trials, min_value=1))
    out, _ = model(batch.inputs, batch.h0)
    return float((out[task.response] - batch.targets[task.response]).pow(2).mean())


@torch.no_grad()
def readout_only_mse(model, task: CueRecallTask, n_train: int = 1000, n_test: int = 1000) -> float:
    """How much of the cue an *untrained* network's own dynamics keep: fit the best linear readout
    (least squares, with a bias) of the response-step states of ``n_train`` trials, and return its
    response MSE on ``n_test`` new trials. Learning the recurrent weights has to beat this."""
    def states(n):
        batch = task.batch(n)
        _, h = model(batch.inputs, batch.h0)
        h = h[task.response].reshape(-1, h.shape[-1])
        return torch.cat([h, torch.ones(len(h), 1)], 1), batch.targets[task.response].reshape(-1, 1)

    h, y = states(check_int("n_train", n_train, min_value=2))
    coef = torch.linalg.lstsq(h, y).solution
    h, y = states(check_int("n_test", n_test, min_value=1))
    return float((h @ coef - y).pow(2).mean())
