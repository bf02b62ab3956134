"""Measurements on trained networks: accuracies, per-condition accuracies, activity summaries
(introduced in chapter 1, used by every classification chapter)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from ..tasks.batch import TaskBatch
from ..validation import check_int, check_real

__all__ = ["ideal_observer_accuracy", "choices", "decision_accuracy", "accuracy_by", "evaluate", "Evaluation"]


def ideal_observer_accuracy(coherence: float, stimulus_ms: float, dt: float,
                            sigma: float = 1.0) -> float:
    """Accuracy of an ideal observer that sums the evidence of neurogym's PerceptualDecisionMaking.

    Each step, the two stimulus channels carry ``0.5 +- coh/200`` plus independent Gaussian noise
    of std ``sigma / sqrt(dt)``. Summing the channel difference over ``n = stimulus_ms / dt``
    steps gives mean ``n coh / 100`` and std ``sqrt(2 n / dt) sigma``; the observer is right
    with probability ``Phi(mean / std)`` (0.5 at zero coherence). No network can beat this.
    """
    from scipy.stats import norm

    coherence = check_real("coherence", coherence, low=0.0)
    stimulus_ms = check_real("stimulus_ms", stimulus_ms, low=0.0, low_open=True)
    dt = check_real("dt", dt, low=0.0, low_open=True)
    sigma = check_real("sigma", sigma, low=0.0, low_open=True)
    n = stimulus_ms / dt
    return float(norm.cdf(n * coherence / 100.0 / (np.sqrt(2.0 * n / dt) * sigma)))


def choices(outputs: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
    """Each trial's choice: the action with the largest mean output over its decision period.

    ``outputs`` has shape (time, batch, actions); returns a long tensor (batch,). Action 0
    (keep fixating) counts as a choice too, and is always wrong in the decision period.
    """
    if outputs.dim() != 3 or outputs.shape[:2] != batch.decision.shape:
        raise ValueError(f"outputs must have shape (time, batch, actions) = "
                         f"{tuple(batch.decision.shape)} + (actions,), got {tuple(outputs.shape)}")
    dec = batch.decision.to(outputs.dtype).unsqueeze(-1)
    mean_out = (outputs * dec).sum(0) / dec.sum(0).clamp(min=1.0)
    return mean_out.argmax(dim=-1)


def decision_accuracy(outputs: torch.Tensor, batch: TaskBatch) -> float:
    """Fraction of trials whose decision-period choice equals the correct choice."""
    return (choices(outputs, batch) == batch.decision_targets).float().mean().item()


def accuracy_by(outputs: torch.Tensor, batch: TaskBatch, key: str) -> dict[float, float]:
    """Decision accuracy for each value of the trial field ``key`` (e.g. ``"coh"``)."""
    correct = (choices(outputs, batch) == batch.decision_targets).numpy()
    values = batch.trial_values(key)
    return {float(v) if np.isscalar(v) else v: float(correct[values == v].mean())
            for v in sorted(set(values.tolist()))}


class Evaluation:
    """Result of :func:`evaluate`: overall accuracy, accuracy per condition, outputs and rates."""

    def __init__(self, batch: TaskBatch, outputs: torch.Tensor, rates: torch.Tensor,
                 key: str | None) -> None:
        self.batch, self.outputs, self.rates = batch, outputs, rates
        self.accuracy = decision_accuracy(outputs, batch)
        self.by_condition = accuracy_by(outputs, batch, key) if key else {}
        n = batch.decision.shape[1]
        # binomial standard error of the overall accuracy
        self.stderr = float(np.sqrt(self.accuracy * (1 - self.accuracy) / n))

    def __repr__(self) -> str:
        per = ", ".join(f"{k:g}: {v:.2f}" for k, v in self.by_condition.items())
        return f"Evaluation(accuracy={self.accuracy:.3f} +- {self.stderr:.3f}; {per})"


@torch.no_grad()
def evaluate(model: nn.Module, batch_fn: Callable[[int], TaskBatch], n_trials: int = 1000,
             key: str | None = "coh") -> Evaluation:
    """Run ``model`` on ``n_trials`` held-out trials from ``batch_fn(n_trials)`` and measure it."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    n_trials = check_int("n_trials", n_trials, min_value=1)
    model.eval()
    batch = batch_fn(n_trials)
    outputs, rates = model(batch.inputs)
    return Evaluation(batch, outputs, rates, key)
