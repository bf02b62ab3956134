"""Selectivity of single units: how well a unit's activity tells two conditions apart.

A unit's **preference index** for condition A over condition B is ``2 AUC - 1``, where AUC is the
area under the ROC curve of its activity on A-trials against B-trials (the probability that an
A-trial's activity exceeds a B-trial's; ties count one half). It lies in [-1, 1]: +1 if every
A-trial is above every B-trial, 0 if the two overlap completely. Chapter 7 uses it for the
choice selectivity (trials by the network's choice) and the modality selectivity (visual-only
against auditory-only trials) of the units of the multisensory network, as Raposo et al. (2014)
did for rat posterior parietal cortex.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..validation import as_numpy, check_real

__all__ = ["preference_index", "classify_units", "UNIT_CLASSES"]

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
