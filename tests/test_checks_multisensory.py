"""Tests of utils.checks.multisensory (Lab 7): the references pass, broken versions fail."""

import numpy as np
import torch

from utils.checks.multisensory import (check_fit_cumulative_gaussian, check_gamma_balanced_init,
                                       check_sample_conditions, check_trial_inputs,
                                       reference_fit_cumulative_gaussian,
                                       reference_gamma_balanced_init, reference_sample_conditions,
                                       reference_trial_inputs)


def test_references_pass():
    assert check_trial_inputs(reference_trial_inputs, quiet=True).passed
    assert check_sample_conditions(reference_sample_conditions, quiet=True).passed
    assert check_gamma_balanced_init(reference_gamma_balanced_init, quiet=True).passed
    assert check_fit_cumulative_gaussian(reference_fit_cumulative_gaussian, quiet=True).passed


def test_broken_versions_fail():
    def no_start_cue(modality, freq, n_fix, n_stim, n_dec):
        x = reference_trial_inputs(modality, freq, n_fix, n_stim, n_dec).clone()
        x[:, 4] = 0
        return x

    def rates_to_15(n, p, seed):            # forgets rate 16: not uniform over 9..16
        modality, freq = reference_sample_conditions(n, p, seed)
        return modality, np.where(freq == 16, 15.0, freq)

    def exponential_init(n, e_frac, rho, k, seed):   # k ignored: CV 1 instead of 1/sqrt(k)
        return reference_gamma_balanced_init(n, e_frac, rho, 1.0, seed)

    def unbalanced_init(n, e_frac, rho, k, seed):
        w = reference_gamma_balanced_init(n, e_frac, rho, k, seed).clone()
        w[:, round(e_frac * n):] /= 3
        return w

    def least_squares_width(x, y):          # a biased estimate: twice the width
        mu, sigma = reference_fit_cumulative_gaussian(x, y)
        return mu, 2 * sigma

    assert not check_trial_inputs(no_start_cue, quiet=True).passed
    assert not check_sample_conditions(rates_to_15, quiet=True).passed
    assert not check_gamma_balanced_init(exponential_init, quiet=True).passed
    assert not check_gamma_balanced_init(unbalanced_init, quiet=True).passed
    assert not check_fit_cumulative_gaussian(least_squares_width, quiet=True).passed
    assert not check_gamma_balanced_init(lambda *a: torch.zeros(3), quiet=True).passed
