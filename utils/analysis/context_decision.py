"""Decisions in the context-dependent task, trial by trial, and its ideal observer (chapter 5).

In neurogym's ``ContextDecisionMaking-v0`` with an explicit context (7 inputs: fixation, two
channels per modality, two context channels) each trial shows two noisy stimuli, one per
modality, each pointing to choice 1 or 2 with its own coherence; the context says which
modality to follow. Per step, a modality's two channels are ``0.5 +- coh / 200`` plus independent
Gaussian noise of standard deviation ``sigma / sqrt(dt)`` (0.1 at ``dt = 100`` ms, ``sigma = 1``).

The **ideal observer** knows the context and sums the difference of the relevant modality's two
channels over the stimulus: after ``n`` steps that sum has mean ``n coh / 100`` and standard
deviation ``sqrt(2 n) sigma_step``, so it is right with probability
``Phi(sqrt(n) coh / (100 sqrt(2) sigma_step))`` (:func:`ideal_observer_accuracy`), and
:func:`ideal_observer_choices` applies it to actual trials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..tasks.batch import TaskBatch
from ..validation import check_int, check_real
from .answers import answer_choices

__all__ = [
    "accuracy_by",
    "decision_outcomes",
    "ideal_observer_accuracy",
    "ideal_observer_choices",
    "relevant_coherence",
    "stream_trials",
]

#: input channels of ContextDecisionMaking-v0 with use_expl_context=True
MODALITY_CHANNELS = ((1, 2), (3, 4))
CONTEXT_CHANNELS = (5, 6)


def stream_trials(batch: TaskBatch) -> list[dict[str, Any]]:
    """The trial dicts of ``batch`` in column-then-time order: for streams made by
    :func:`utils.tasks.streams.chain_trials` the trials of each stream, stream after stream;
    for a trial-aligned batch its trials."""
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    out: list[dict[str, Any]] = []
    for entry in batch.trials:
        out.extend(entry.get("trials", [entry]))
    return out


def relevant_coherence(trials: Sequence[dict[str, Any]]) -> np.ndarray:
    """Coherence of the modality the context selects (``coh_1`` in context 0, ``coh_2`` in 1)."""
    try:
        return np.array([tr["coh_1"] if tr["context"] == 0 else tr["coh_2"] for tr in trials])
    except (KeyError, TypeError) as err:
        raise ValueError("trials must be ContextDecisionMaking trial dicts with keys 'context', "
                         f"'coh_1' and 'coh_2' ({err!r})") from err


def decision_outcomes(outputs: torch.Tensor, batch: TaskBatch) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's choice and whether it was correct, in the order of :func:`stream_trials`.

    Every trial must have exactly one answer period (one contiguous run of ``batch.decision``);
    the choice is the action with the largest mean output over it (see
    :func:`utils.analysis.answers.answer_choices`). Returns ``(choices, correct)``.
    """
    chosen, truth = answer_choices(outputs, batch)
    choices, correct = np.concatenate(chosen), np.concatenate(truth)
    n_trials = len(stream_trials(batch))
    if batch.trials and len(choices) != n_trials:
        raise ValueError(f"batch has {n_trials} trials but {len(choices)} answer periods: every "
                         "trial must have exactly one")
    return choices, choices == correct


def accuracy_by(correct: np.ndarray, values: Sequence[Any]) -> dict[Any, float]:
    """Fraction correct for each distinct value of ``values`` (one per trial), sorted by value."""
    correct = np.asarray(correct, dtype=bool)
    values = np.asarray(values)
    if correct.shape != values.shape or correct.ndim != 1:
        raise ValueError(f"correct and values must be 1-D with one entry per trial, got shapes "
                         f"{correct.shape} and {values.shape}")
    return {v.item() if hasattr(v, "item") else v: float(correct[values == v].mean())
            for v in np.unique(values)}


def ideal_observer_accuracy(cohs: Sequence[float], n_steps: int, sigma_step: float) -> float:
    """Mean probability correct of the ideal observer over equally likely coherences ``cohs``
    (in %), with ``n_steps`` stimulus steps of per-channel noise ``sigma_step``."""
    cohs = [check_real("cohs", c, low=0.0) for c in cohs]
    if not cohs:
        raise ValueError("cohs must hold at least one coherence")
    n_steps = check_int("n_steps", n_steps, min_value=1)
    sigma_step = check_real("sigma_step", sigma_step, low=0.0, low_open=True)
    phi = [0.5 * (1 + math.erf(math.sqrt(n_steps) * c / (100 * math.sqrt(2) * sigma_step) / math.sqrt(2)))
           for c in cohs]
    return float(np.mean(phi))


def ideal_observer_choices(batch: TaskBatch) -> np.ndarray:
    """The ideal observer's choice (1 or 2) on each trial of a trial-aligned batch of
    ``ContextDecisionMaking-v0`` (explicit context, 7 inputs): the sign of the summed channel
    difference of the modality the context input selects."""
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    if batch.inputs.shape[-1] != 7:
        raise ValueError("batch must come from ContextDecisionMaking-v0 with use_expl_context=True "
                         f"(7 inputs), got {batch.inputs.shape[-1]} inputs")
    x = (batch.inputs * batch.valid[..., None]).sum(0).to(torch.float64)     # (batch, 7)
    context = (x[:, CONTEXT_CHANNELS[1]] > x[:, CONTEXT_CHANNELS[0]]).long()
    evidence = torch.stack([x[:, a] - x[:, b] for a, b in MODALITY_CHANNELS], dim=1)
    relevant = evidence[torch.arange(len(context)), context]
    return np.where(relevant.numpy() > 0, 1, 2)
