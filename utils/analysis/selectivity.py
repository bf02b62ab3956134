"""Selectivity of single units: how well a unit's activity tells two conditions apart.

A unit's **preference index** for condition A over condition B is ``2 AUC - 1``, where AUC is the
area under the ROC curve of its activity on A-trials against B-trials (the probability that an
A-trial's activity exceeds a B-trial's; ties count one half). It lies in [-1, 1]: +1 if every
A-trial is above every B-trial, 0 if the two overlap completely. Chapter 7 uses it for the
choice selectivity (trials by the network's choice) and the modality selectivity (visual-only
against auditory-only trials) of the units of the multisensory network, as Raposo et al. (2014)
did for rat posterior parietal cortex.

The **selectivity index** d' (chapter 4, the light-GRU analyses; reused in Part III) is the
difference of a unit's mean activity in the time steps of two conditions over their pooled
standard deviation. Its functions take states of shape (time, units) or (time, batch, units)
and reduce over **time** (dim 0), so a batch of test sequences gives one value per sequence and
unit: :func:`max_activation`, :func:`selectivity`, :func:`max_abs_selectivity`,
:func:`action_masks` (conditions from the network's own choices) and
:func:`monte_carlo_selectivity` (the distribution of max-|d'| over many test sequences).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from scipy import stats

from ..validation import as_numpy, check_int, check_real

__all__ = ["preference_index", "classify_units", "UNIT_CLASSES", "max_activation", "selectivity",
           "max_abs_selectivity", "action_masks", "monte_carlo_selectivity", "MonteCarloSelectivity",
           "preference_thirds", "opponent_weights"]

#: the labels :func:`classify_units` gives
UNIT_CLASSES = ("choice", "modality", "mixed", "neither", "inactive")


def preference_index(a, b) -> np.ndarray:
    """Per unit, ``2 AUC - 1`` of activity ``a`` (trials_a, units) against ``b`` (trials_b, units).

    Computed from the Mann-Whitney U statistic (ranks over the pooled trials, ties averaged).
    """
    a = as_numpy(a, float)
    b = as_numpy(b, float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be arrays of shape (trials, units) with the same number "
                         f"of units, got {a.shape} and {b.shape}")
    if len(a) == 0 or len(b) == 0:
        raise ValueError("a and b must each contain at least one trial")
    ranks = stats.rankdata(np.concatenate([a, b]), axis=0)
    n_a, n_b = len(a), len(b)
    u = ranks[:n_a].sum(axis=0) - n_a * (n_a + 1) / 2.0
    return 2.0 * u / (n_a * n_b) - 1.0


def classify_units(choice_index, modality_index, *, threshold: float = 0.3,
                   active=None) -> np.ndarray:
    """Label each unit by which index exceeds ``threshold`` in absolute value.

    ``"choice"`` (only the choice index), ``"modality"`` (only the modality index), ``"mixed"``
    (both), ``"neither"``; units where ``active`` (a boolean array) is False are ``"inactive"``.
    """
    c = as_numpy(choice_index, float).reshape(-1)
    m = as_numpy(modality_index, float).reshape(-1)
    if c.shape != m.shape:
        raise ValueError(f"choice_index and modality_index must have equal length, got "
                         f"{c.size} and {m.size}")
    threshold = check_real("threshold", threshold, low=0.0, high=1.0, low_open=True)
    sc, sm = np.abs(c) >= threshold, np.abs(m) >= threshold
    labels = np.where(sc & sm, "mixed", np.where(sc, "choice", np.where(sm, "modality", "neither")))
    if active is not None:
        active = as_numpy(active).astype(bool).reshape(-1)
        if active.shape != c.shape:
            raise ValueError(f"active must have one entry per unit ({c.size}), got {active.size}")
        labels = np.where(active, labels, "inactive")
    return labels.astype(object)


def _check_states(states: torch.Tensor) -> torch.Tensor:
    if not isinstance(states, torch.Tensor) or states.dim() not in (2, 3):
        raise ValueError("states must be a tensor of shape (time, units) or (time, batch, units), got "
                         f"{tuple(states.shape) if hasattr(states, 'shape') else type(states).__name__}")
    return states


def max_activation(states: torch.Tensor) -> torch.Tensor:
    """Each unit's largest activation over time: (units,) or (batch, units)."""
    return _check_states(states).amax(dim=0)


def selectivity(states: torch.Tensor, when_a: torch.Tensor, when_b: torch.Tensor,
                eps: float = 1e-6) -> torch.Tensor:
    """Selectivity index d' of every unit for condition A against condition B.

    ``d' = (mean_A - mean_B) / sqrt((var_A + var_B) / 2)``: the difference of the unit's mean
    activity in the steps of A and of B over their pooled standard deviation (population
    variances over time). Positive: the unit is more active in A. A unit with no variance in either
    condition gets 0 (``eps`` guards the division); a sequence without steps of A or of B gives
    NaN for every unit.

    (The coursework used ``2 (mean_A - mean_B) / sqrt(var_A + var_B)``, which is this times
    sqrt(2).)

    Args:
        states: (time, units) or (time, batch, units).
        when_a, when_b: bool masks of shape (time,) or (time, batch): the steps of A and of B.
    Returns:
        (units,) or (batch, units).
    """
    states = _check_states(states)
    eps = check_real("eps", eps, low=0.0, low_open=True)
    for name, m in (("when_a", when_a), ("when_b", when_b)):
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or m.shape != states.shape[:-1]:
            raise ValueError(f"{name} must be a bool tensor of shape {tuple(states.shape[:-1])}, got "
                             f"{getattr(m, 'dtype', type(m).__name__)} "
                             f"{tuple(m.shape) if hasattr(m, 'shape') else ''}")
    x = states.to(torch.float64)

    def stats(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = m.to(x.dtype).unsqueeze(-1)
        n = w.sum(0)
        mean = (x * w).sum(0) / n
        var = ((x - mean) ** 2 * w).sum(0) / n
        return mean, var

    mean_a, var_a = stats(when_a)
    mean_b, var_b = stats(when_b)
    diff = mean_a - mean_b
    d = diff / torch.sqrt((var_a + var_b) / 2.0 + eps ** 2)
    d = torch.where((var_a + var_b == 0) & (diff.abs() < eps), torch.zeros_like(d), d)
    return d.to(states.dtype)


def max_abs_selectivity(indices: torch.Tensor) -> torch.Tensor:
    """Largest |d'| over several comparisons: ``indices`` (comparisons, ..., units) -> (..., units)."""
    if not isinstance(indices, torch.Tensor) or indices.dim() < 2:
        raise ValueError("indices must be a tensor of shape (comparisons, ..., units)")
    return indices.abs().amax(dim=0)


@dataclass
class MonteCarloSelectivity:
    """Result of :func:`monte_carlo_selectivity`.

    Attributes:
        values: max-|d'| of every active unit in every sequence, flattened (the histogram's data).
        per_sequence: (sequences, units) max-|d'|, NaN where the unit was silent.
        active_fraction: fraction of (sequence, unit) pairs kept (not silent).
    """

    values: np.ndarray
    per_sequence: np.ndarray
    active_fraction: float


def action_masks(outputs: torch.Tensor, comparisons: Mapping[str, tuple[Sequence[int], Sequence[int]]]
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Bool masks of the steps where the network chose given actions (its own choices: the argmax
    of ``outputs`` (time, [batch,] actions)).

    ``comparisons`` maps a name to two groups of actions, e.g. for DualDelayMatchSample
    ``{"active/inactive": ((1, 2), (0,)), "accept/reject": ((1,), (2,))}``; returns
    ``name -> (when_a, when_b)`` masks of shape (time, [batch]).
    """
    if not isinstance(outputs, torch.Tensor) or outputs.dim() not in (2, 3):
        raise ValueError("outputs must be a tensor of shape (time, actions) or (time, batch, actions)")
    if not isinstance(comparisons, Mapping) or not comparisons:
        raise ValueError("comparisons must be a non-empty dict name -> (actions_a, actions_b)")
    choice = outputs.argmax(-1)
    n_actions = outputs.shape[-1]
    masks = {}
    for name, groups in comparisons.items():
        if len(groups) != 2 or not all(len(g) and all(0 <= int(a) < n_actions for a in g) for g in groups):
            raise ValueError(f"comparisons[{name!r}] must be two non-empty groups of actions in "
                             f"[0, {n_actions}), got {groups!r}")
        masks[name] = tuple(torch.isin(choice, torch.as_tensor(list(g))) for g in groups)
    return masks


@torch.no_grad()
def monte_carlo_selectivity(model: torch.nn.Module, inputs: torch.Tensor,
                            comparisons: Mapping[str, tuple[Sequence[int], Sequence[int]]], *,
                            chunk: int = 128, min_activation: float = 0.05) -> MonteCarloSelectivity:
    """Distribution of each unit's max-|d'| over many independent test sequences.

    ``inputs`` (time, sequences, n_input) holds the test sequences (e.g. streams of 25 trials);
    the model (in evaluation mode) runs on ``chunk`` sequences at a time. In each sequence and for
    each comparison of :func:`action_masks` (groups of the network's own choices) the d' of every
    unit is computed; the largest absolute value over the comparisons is kept. Units whose maximum
    activation in that sequence is below ``min_activation`` are silent and removed, as are NaNs
    (a sequence without steps of one side of every comparison).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        raise ValueError("inputs must be a tensor of shape (time, sequences, n_input)")
    chunk = check_int("chunk", chunk, min_value=1)
    min_activation = check_real("min_activation", min_activation, low=0.0)
    model.eval()
    rows = []
    for start in range(0, inputs.shape[1], chunk):
        outputs, states = model(inputs[:, start: start + chunk])
        _check_states(states)
        masks = action_masks(outputs, comparisons)
        d = torch.stack([selectivity(states, a, b) for a, b in masks.values()])
        nan = torch.isnan(d)
        best = torch.where(nan, torch.zeros_like(d), d.abs()).amax(0)
        best[nan.all(0)] = float("nan")
        best[max_activation(states) < min_activation] = float("nan")
        rows.append(best.cpu().numpy())
    per_sequence = np.concatenate(rows, axis=0)
    keep = ~np.isnan(per_sequence)
    return MonteCarloSelectivity(per_sequence[keep], per_sequence, float(keep.mean()))


def preference_thirds(preference: torch.Tensor) -> torch.Tensor:
    """+1 / -1 for the units in the top / bottom third of ``preference`` (1-D), 0 for the middle
    third: the units with a clear preferred choice (chapter 1)."""
    if not isinstance(preference, torch.Tensor) or preference.dim() != 1 or preference.numel() < 3:
        raise ValueError("preference must be a 1-D tensor with at least 3 units")
    lo, hi = preference.quantile(1 / 3), preference.quantile(2 / 3)
    return torch.where(preference >= hi, 1, torch.where(preference <= lo, -1, 0))


def opponent_weights(weights: torch.Tensor, preference: torch.Tensor, n_exc: int) -> dict[str, float]:
    """Mean |weight| between units of the same and of the opposite preferred choice (chapter 1).

    Units are split by :func:`preference_thirds` within each population (excitatory units
    ``0 .. n_exc - 1``, inhibitory the rest); the middle thirds are left out. Returns
    ``{"E->I same", "E->I opposite", "I->E same", "I->E opposite"}``: e.g. ``"I->E opposite"``
    is the mean |W[post, pre]| from inhibitory units to excitatory units that prefer the other
    choice. Opponent inhibition shows as ``"I->E opposite"`` > ``"I->E same"``.

    Args:
        weights: effective recurrent weights W[post, pre], shape (N, N).
        preference: one number per unit (e.g. its mean rate on choice-1 minus choice-2 trials).
        n_exc: number of excitatory units (the first ``n_exc``).
    """
    weights = torch.as_tensor(weights).detach()
    n = weights.shape[0]
    if weights.dim() != 2 or weights.shape[1] != n:
        raise ValueError(f"weights must be a square (N, N) matrix, got {tuple(weights.shape)}")
    if not isinstance(preference, torch.Tensor) or tuple(preference.shape) != (n,):
        raise ValueError(f"preference must be a tensor of shape ({n},), one value per unit")
    n_exc = check_int("n_exc", n_exc, min_value=3, max_value=n - 3)
    pref_e, pref_i = preference_thirds(preference[:n_exc]), preference_thirds(preference[n_exc:])

    def mean_weight(post: torch.Tensor, pre: torch.Tensor, block: torch.Tensor, same: bool) -> float:
        pairs = (post[:, None] * pre[None, :]) == (1 if same else -1)
        return float(block.abs()[pairs].mean())

    e_to_i, i_to_e = weights[n_exc:, :n_exc], weights[:n_exc, n_exc:]
    return {"E->I same": mean_weight(pref_i, pref_e, e_to_i, True),
            "E->I opposite": mean_weight(pref_i, pref_e, e_to_i, False),
            "I->E same": mean_weight(pref_e, pref_i, i_to_e, True),
            "I->E opposite": mean_weight(pref_e, pref_i, i_to_e, False)}
