"""Psychometric curves: the fraction of one choice against a stimulus value, and their fits.

Chapter 7 fits a cumulative Gaussian, ``P(high | f) = Phi((f - mu) / sigma)``, by maximum
likelihood to the network's choices. ``mu`` is the point of subjective equality (the category
boundary the network has learned) and ``sigma`` the psychometric threshold (the width: smaller is
more sensitive). For two independent cues, the statistically optimal combination has
``1 / sigma_both^2 = 1 / sigma_1^2 + 1 / sigma_2^2`` (Ernst & Banks 2002; Raposo et al. 2012).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from ..validation import check_real

__all__ = ["PsychometricFit", "cumulative_gaussian", "choice_fractions", "fit_psychometric",
           "optimal_sigma"]


@dataclass(frozen=True)
class PsychometricFit:
    """Maximum-likelihood cumulative Gaussian: ``mu`` (boundary), ``sigma`` (threshold)."""

    mu: float
    sigma: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return cumulative_gaussian(x, self.mu, self.sigma)


def cumulative_gaussian(x: np.ndarray | float, mu: float, sigma: float) -> np.ndarray:
    """``Phi((x - mu) / sigma)``, the standard normal CDF of the scaled stimulus."""
    sigma = check_real("sigma", sigma, low=0.0, low_open=True)
    return 0.5 * special.erfc(-(np.asarray(x, dtype=float) - mu) / (sigma * np.sqrt(2.0)))


def choice_fractions(stimulus: np.ndarray, chose: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
    """Per distinct stimulus value: ``(values, fraction of True in chose, number of trials)``."""
    stimulus = np.asarray(stimulus, dtype=float).reshape(-1)
    chose = np.asarray(chose).reshape(-1)
    if stimulus.shape != chose.shape or stimulus.size == 0:
        raise ValueError(f"stimulus and chose must be non-empty and of equal length, got "
                         f"{stimulus.size} and {chose.size}")
    if not np.all(np.isfinite(stimulus)):
        raise ValueError("stimulus must be finite (drop catch trials first)")
    values = np.unique(stimulus)
    n = np.array([(stimulus == v).sum() for v in values])
    frac = np.array([chose[stimulus == v].astype(float).mean() for v in values])
    return values, frac, n


def fit_psychometric(stimulus: np.ndarray, chose: np.ndarray, *,
                     min_sigma: float = 1e-2) -> PsychometricFit:
    """Fit ``P(chose | stimulus) = Phi((stimulus - mu) / sigma)`` by maximum likelihood.

    Args:
        stimulus: per trial, the stimulus value (e.g. the event rate).
        chose: per trial, True/1 if the subject made the choice being modelled (e.g. "high").
        min_sigma: lower bound of ``sigma`` (perfectly separated choices have no finite optimum).
    """
    values, frac, n = choice_fractions(stimulus, chose)
    if len(values) < 2:
        raise ValueError("stimulus must take at least two distinct values to fit a curve")
    min_sigma = check_real("min_sigma", min_sigma, low=0.0, low_open=True)
    k = frac * n
    eps = 1e-12

    def nll(theta: np.ndarray) -> float:
        p = np.clip(cumulative_gaussian(values, theta[0], min_sigma + np.exp(theta[1])),
                    eps, 1 - eps)
        return -float(np.sum(k * np.log(p) + (n - k) * np.log(1 - p)))

    span = float(values[-1] - values[0])
    starts = [np.array([values.mean(), np.log(s * span)]) for s in (0.05, 0.2, 1.0)]
    best = min((optimize.minimize(nll, s, method="Nelder-Mead",
                                  options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000})
                for s in starts), key=lambda r: r.fun)
    return PsychometricFit(float(best.x[0]), float(min_sigma + np.exp(best.x[1])))


def optimal_sigma(sigma_1: float, sigma_2: float) -> float:
    """Threshold of the optimal combination of two independent cues:
    ``(1 / sigma_1^2 + 1 / sigma_2^2) ** -0.5``."""
    s1 = check_real("sigma_1", sigma_1, low=0.0, low_open=True)
    s2 = check_real("sigma_2", sigma_2, low=0.0, low_open=True)
    return float((1.0 / s1 ** 2 + 1.0 / s2 ** 2) ** -0.5)
