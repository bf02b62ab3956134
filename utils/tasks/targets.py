"""Target-trajectory tasks after Murray (2019): the network's output must follow a given signal
(chapter 3).

:class:`PeriodicTargetTask` is the periodic-output task of Murray's figure 2: a recurrent network
must produce a one-dimensional periodic signal (a sum of a few sinusoids with fixed random
amplitudes and phases) lasting one period. A brief input pulse at the start of the trial tells the
network to begin, and every trial starts from a slightly different random state, so a batch holds
genuinely different trials and the network must learn a trajectory that is robust to its starting
point. Time is measured in Euler steps; ``tau`` (in steps) is the units' time constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..validation import check_choice, check_int, check_real
from .batch import Batch, per_trial

__all__ = ["TargetBatch", "PeriodicTargetTask", "TeacherRegressionTask"]


@dataclass
class TargetBatch(Batch):
    """A batch of target-following trials, time-major (a :class:`~utils.tasks.batch.Batch`).

    Attributes:
        inputs: (time, batch, n_input) input signals.
        targets: (time, batch, n_output) target outputs y*(t).
        h0: (batch, n_units) initial states of the network.
    """

    h0: torch.Tensor = per_trial()


class PeriodicTargetTask:
    """Produce one period of a fixed random periodic signal after a start pulse.

    Args:
        n_units: number of recurrent units (sets the size of the initial states).
        tau: time constant of the units, in Euler steps (>= 1).
        period_tau: length of the period (= the trial) in units of ``tau`` (Murray used 20).
        n_harmonics: number of sinusoids in the target (frequencies 1, 2, ... per period).
        pulse_steps: duration of the start pulse, in steps (at least 1, shorter than the trial).
        h0_std: standard deviation of the random initial states (0 = all trials identical).
        drive: ``"pulse"`` -- one input, a start pulse, the network must generate the rhythm
            itself -- or ``"clock"`` -- two inputs, the sine and cosine of the period's
            fundamental frequency, from which the network must build the harmonics.
        seed: seed of the target's amplitudes and phases and of the initial states.

    Example::

        task = PeriodicTargetTask(n_units=30, tau=5, period_tau=20, seed=0)
        batch = task.batch(16)        # inputs (100, 16, 1), targets (100, 16, 1), h0 (16, 30)
    """

    n_output = 1

    def __init__(self, n_units: int, tau: float = 5.0, period_tau: float = 20.0,
                 n_harmonics: int = 3, pulse_steps: int = 5, h0_std: float = 0.1,
                 drive: str = "pulse", seed: int = 0) -> None:
        self.n_units = check_int("n_units", n_units, min_value=1)
        self.tau = check_real("tau", tau, low=1.0)
        self.period_tau = check_real("period_tau", period_tau, low=0.0, low_open=True)
        self.n_steps = int(round(self.tau * self.period_tau))
        if self.n_steps < 2:
            raise ValueError(f"tau * period_tau must give at least 2 time steps, got "
                             f"{self.tau:g} * {self.period_tau:g}")
        self.n_harmonics = check_int("n_harmonics", n_harmonics, min_value=1)
        self.pulse_steps = check_int("pulse_steps", pulse_steps, min_value=1,
                                     max_value=self.n_steps - 1)
        self.h0_std = check_real("h0_std", h0_std, low=0.0)
        self.drive = check_choice("drive", drive, ["pulse", "clock"])
        self.n_input = 1 if self.drive == "pulse" else 2
        self.seed = check_int("seed", seed, min_value=0)
        gen = torch.Generator().manual_seed(self.seed)
        amps = torch.rand(self.n_harmonics, generator=gen) + 0.5
        phases = 2 * math.pi * torch.rand(self.n_harmonics, generator=gen)
        t = torch.arange(self.n_steps, dtype=torch.float32)
        k = torch.arange(1, self.n_harmonics + 1, dtype=torch.float32)
        wave = (amps[:, None] * torch.sin(2 * math.pi * k[:, None] * t[None] / self.n_steps
                                          + phases[:, None])).sum(0)
        #: the target signal over one trial, shape (time,), scaled to peak amplitude 0.8
        self.signal = 0.8 * wave / wave.abs().max()
        self._gen = torch.Generator().manual_seed(self.seed + 1)

    def batch(self, batch_size: int) -> TargetBatch:
        """``batch_size`` trials: same pulse and target, different random initial states."""
        batch_size = check_int("batch_size", batch_size, min_value=1)
        if self.drive == "pulse":
            inputs = torch.zeros(self.n_steps, batch_size, 1)
            inputs[: self.pulse_steps] = 1.0
        else:
            phase = 2 * math.pi * torch.arange(self.n_steps, dtype=torch.float32) / self.n_steps
            clock = torch.stack([torch.sin(phase), torch.cos(phase)], dim=1)
            inputs = clock[:, None, :].expand(-1, batch_size, 2).clone()
        targets = self.signal[:, None, None].expand(-1, batch_size, 1).clone()
        h0 = self.h0_std * torch.randn(batch_size, self.n_units, generator=self._gen)
        return TargetBatch(inputs, targets, h0)

    def time_in_tau(self) -> torch.Tensor:
        """Time of each step in units of tau, shape (time,), for plotting."""
        return torch.arange(self.n_steps, dtype=torch.float32) / self.tau


class TeacherRegressionTask:
    """Regression onto a fixed random "teacher" network, the test bed of feedback alignment.

    A teacher ``y = W2 tanh(W1 x)`` with Gaussian weights maps Gaussian inputs ``x`` to targets;
    a student network of the same shape must learn the map (Lillicrap et al. 2016 used the same
    student-teacher design). Training batches are fresh samples; :meth:`test_set` is a fixed
    held-out set.

    Args:
        n_input, n_hidden, n_output: sizes of the teacher.
        gain: scale of the teacher's first-layer weights (larger = more nonlinear).
        noise_std: standard deviation of Gaussian noise added to every target (training and
            test), so that the best possible test MSE is ``noise_std**2``.
        seed: seed of the teacher and of the samples.
    """

    def __init__(self, n_input: int = 30, n_hidden: int = 20, n_output: int = 10,
                 gain: float = 1.5, noise_std: float = 0.0, seed: int = 0) -> None:
        self.n_input = check_int("n_input", n_input, min_value=1)
        self.n_hidden = check_int("n_hidden", n_hidden, min_value=1)
        self.n_output = check_int("n_output", n_output, min_value=1)
        self.gain = check_real("gain", gain, low=0.0, low_open=True)
        self.noise_std = check_real("noise_std", noise_std, low=0.0)
        self.seed = check_int("seed", seed, min_value=0)
        gen = torch.Generator().manual_seed(self.seed)
        self.w1 = self.gain * torch.randn(self.n_hidden, self.n_input, generator=gen) / math.sqrt(self.n_input)
        self.w2 = torch.randn(self.n_output, self.n_hidden, generator=gen) / math.sqrt(self.n_hidden)
        self._gen = torch.Generator().manual_seed(self.seed + 1)
        test_gen = torch.Generator().manual_seed(self.seed + 2)
        x = torch.randn(1000, self.n_input, generator=test_gen)
        y = self.teacher(x) + self.noise_std * torch.randn(1000, self.n_output, generator=test_gen)
        self._test = (x, y)

    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's output for inputs ``x`` of shape (batch, n_input)."""
        return torch.tanh(x @ self.w1.t()) @ self.w2.t()

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh training batch ``(x, y)`` of shapes (batch, n_input) and (batch, n_output)."""
        batch_size = check_int("batch_size", batch_size, min_value=1)
        x = torch.randn(batch_size, self.n_input, generator=self._gen)
        noise = self.noise_std * torch.randn(batch_size, self.n_output, generator=self._gen)
        return x, self.teacher(x) + noise

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed held-out set of 1000 samples ``(x, y)``."""
        return self._test
