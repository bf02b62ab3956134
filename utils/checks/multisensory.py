"""Self-checks for Lab 7 (``07_multisensory``): the trial inputs, the sampling of conditions,
the gamma-balanced initialisation and the psychometric fit. Each ``check_*`` takes the student's
function and prints one line.

The ``reference_*`` functions have exactly the lab's signatures; the lab falls back on them
(through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import numpy as np
import torch

from ..analysis.psychometric import cumulative_gaussian, fit_psychometric
from ..constraints.masks import dale_signs
from ..models.ei_rate import gamma_balanced_weights
from ..tasks.multisensory import FREQS, MODALITIES, multisensory_trials
from ..validation import as_numpy
from .core import expect, expect_close, expect_shape, self_check

__all__ = ["reference_trial_inputs", "reference_sample_conditions",
           "reference_gamma_balanced_init", "reference_fit_cumulative_gaussian",
           "check_trial_inputs", "check_sample_conditions", "check_gamma_balanced_init",
           "check_fit_cumulative_gaussian", "condition_statistics", "init_statistics"]


def reference_trial_inputs(modality: str, freq: float, n_fix: int, n_stim: int,
                           n_dec: int) -> torch.Tensor:
    """Noise-free, baseline-free inputs (n_fix + n_stim + n_dec, 5) of one non-catch trial."""
    b = multisensory_trials([modality], [float(freq)], dt=1.0, fixation=float(n_fix),
                            stimulus=float(n_stim), decision=float(n_dec), baseline=0.0,
                            sigma_in=0.0)
    return b.inputs[:, 0, :]


def reference_sample_conditions(n_trials: int, p_catch: float, seed: int
                                ) -> tuple[list[str], np.ndarray]:
    """Modalities ("v", "a", "va" or "catch") and event rates (nan for catch) of ``n_trials``."""
    rng = np.random.default_rng(seed)
    catch = rng.random(n_trials) < p_catch
    mods = rng.integers(len(MODALITIES), size=n_trials)
    rates = rng.integers(min(FREQS), max(FREQS) + 1, size=n_trials).astype(float)
    modality = ["catch" if c else MODALITIES[m] for c, m in zip(catch, mods)]
    return modality, np.where(catch, np.nan, rates)


def reference_gamma_balanced_init(n_units: int, e_frac: float, rho: float, k: float,
                                  seed: int) -> torch.Tensor:
    """Lab signature of :func:`utils.models.ei_rate.gamma_balanced_weights`."""
    return gamma_balanced_weights(n_units, e_frac, rho=rho, k=k, seed=seed)


def reference_fit_cumulative_gaussian(stimulus, chose) -> tuple[float, float]:
    """Lab signature of :func:`utils.analysis.psychometric.fit_psychometric`: ``(mu, sigma)``."""
    fit = fit_psychometric(as_numpy(stimulus, float), as_numpy(chose).astype(bool))
    return fit.mu, fit.sigma


def condition_statistics(modality: list[str], freq) -> dict[str, float]:
    """Summary statistics of sampled conditions: catch fraction, largest deviation of a rate's
    and of a modality's share from uniform (non-catch trials), fraction of "high" trials."""
    modality = list(modality)
    freq = as_numpy(freq, float).reshape(-1)
    catch = np.array([m == "catch" for m in modality])
    f = freq[~catch]
    mods = np.array(modality)[~catch]
    return {
        "catch": float(catch.mean()),
        "rate_dev": float(max(abs((f == r).mean() - 1 / len(FREQS)) for r in FREQS)),
        "modality_dev": float(max(abs((mods == m).mean() - 1 / 3) for m in MODALITIES)),
        "high": float((f > 12.5).mean()),
        "catch_rates_nan": bool(np.all(np.isnan(freq[catch]))),
        "rates_valid": bool(np.all(np.isin(f, FREQS))),
    }


def init_statistics(w, e_frac: float) -> dict[str, float]:
    """Properties of an initial recurrent matrix of magnitudes ``w``: smallest entry, largest
    diagonal entry, spectral radius of ``w D``, relative E/I imbalance of the mean input, and the
    coefficient of variation of the excitatory entries (1/sqrt(k) for a gamma distribution)."""
    w = torch.as_tensor(as_numpy(w, float))
    n = w.shape[0]
    signs = dale_signs(n, e_frac).double()
    n_e = int((signs > 0).sum())
    off = ~torch.eye(n, dtype=torch.bool)
    exc = w[:, :n_e][off[:, :n_e]]
    e_in, i_in = w[:, :n_e].sum(1).mean(), w[:, n_e:].sum(1).mean()
    return {
        "min": float(w.min()),
        "diag": float(torch.diagonal(w).abs().max()),
        "radius": float(torch.linalg.eigvals(w * signs[None, :]).abs().max()),
        "imbalance": float(abs(e_in - i_in) / e_in),
        "cv": float(exc.std() / exc.mean()),
    }


@self_check("Exercise 7.1: the inputs of one trial",
            hint="Channels: 0 visual+, 1 auditory+, 2 visual-, 3 auditory-, 4 start. The tuned "
                 "channels are on only during the stimulus steps, and only for the modalities "
                 "present; the start cue is on from stimulus onset to the end.")
def check_trial_inputs(fn):
    for modality, freq in [("v", 9), ("a", 16), ("va", 12), ("va", 13)]:
        got = fn(modality, freq, 2, 4, 3)
        expect_shape(got, (9, 5), f"trial_inputs({modality!r}, {freq}, 2, 4, 3)")
        expect_close(got, reference_trial_inputs(modality, freq, 2, 4, 3),
                     f"trial_inputs({modality!r}, {freq}, 2, 4, 3)")


@self_check("Exercise 7.2: sampling the conditions",
            hint="Draw, per trial and with np.random.default_rng(seed): catch or not "
                 "(probability p_catch), then a modality and a rate, each uniformly; catch "
                 "trials get the rate np.nan.")
def check_sample_conditions(fn):
    modality, freq = fn(24000, 0.2, 0)
    expect(len(modality) == 24000 and len(as_numpy(freq)) == 24000,
           "sample_conditions(24000, 0.2, 0) must return 24000 modalities and 24000 rates")
    s = condition_statistics(modality, freq)
    expect(s["rates_valid"], "every non-catch rate must be one of 9, 10, ..., 16")
    expect(s["catch_rates_nan"], "catch trials must have the rate np.nan")
    expect(abs(s["catch"] - 0.2) < 0.015, f"the catch fraction is {s['catch']:.3f}, expected 0.2")
    expect(s["rate_dev"] < 0.012, f"the rates are not uniform: one rate's share is off by "
                                  f"{s['rate_dev']:.3f} from 1/8")
    expect(s["modality_dev"] < 0.015, "the three modalities must be equally likely")
    expect(abs(s["high"] - 0.5) < 0.015, f"{100 * s['high']:.1f}% of the trials are 'high'; "
                                         "with 9-16 /s and boundary 12.5 it should be 50%")
    again = fn(24000, 0.2, 0)
    expect(list(again[0]) == list(modality), "the same seed must give the same conditions")


@self_check("Exercise 7.3: the gamma-balanced initialisation",
            hint="A gamma distribution of shape k and mean m has scale m / k; the means come "
                 "from the balanced structure C (zero diagonal, each row's inhibitory sum equal "
                 "to its excitatory sum, rows of unit length). Multiplying a matrix by a number "
                 "multiplies its spectral radius by that number.")
def check_gamma_balanced_init(fn):
    w = fn(200, 0.8, 1.5, 2.0, 0)
    expect_shape(w, (200, 200), "gamma_balanced_init(200, 0.8, 1.5, 2.0, 0)")
    s = init_statistics(w, 0.8)
    expect(s["min"] >= 0, "return the magnitudes (non-negative); the signs are applied by the model")
    expect(s["diag"] == 0, "the diagonal (self-connections) must be zero")
    expect(abs(s["radius"] - 1.5) < 1e-3, f"the signed matrix has spectral radius {s['radius']:.3f}, expected 1.5")
    expect(s["imbalance"] < 0.05, f"excitatory and inhibitory input differ by {100 * s['imbalance']:.0f}% "
                                  "on average; the structure must balance them")
    expect(abs(s["cv"] - 2 ** -0.5) < 0.07, f"the excitatory weights have a coefficient of variation "
                                            f"{s['cv']:.2f}; a gamma distribution with k=2 has 0.71")
    s8 = init_statistics(fn(200, 0.8, 1.5, 8.0, 0), 0.8)
    expect(abs(s8["cv"] - 8 ** -0.5) < 0.05, "the shape k must set the spread (k=8: CV 0.35)")
    expect_close(fn(200, 0.8, 1.5, 2.0, 0), w, "the same seed twice")


@self_check("Exercise 7.4: the psychometric fit",
            hint="Minimise the negative log-likelihood -sum[y log p + (1-y) log(1-p)] with "
                 "p = Phi((x - mu)/sigma) over (mu, log sigma), e.g. with scipy.optimize.minimize.")
def check_fit_cumulative_gaussian(fn):
    rng = np.random.default_rng(1)
    x = np.repeat(np.arange(9, 17), 300).astype(float)
    for mu, sigma in [(12.5, 1.0), (11.5, 2.0)]:
        y = rng.random(x.size) < cumulative_gaussian(x, mu, sigma)
        got = fn(x, y)
        ref = reference_fit_cumulative_gaussian(x, y)
        expect(len(got) == 2, "return the pair (mu, sigma)")
        expect(abs(got[0] - ref[0]) < 0.02 and abs(got[1] - ref[1]) < 0.02 * ref[1],
               f"for data made with mu={mu}, sigma={sigma} you fitted ({got[0]:.3f}, "
               f"{got[1]:.3f}); the maximum-likelihood fit is ({ref[0]:.3f}, {ref[1]:.3f})")
