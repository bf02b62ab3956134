"""Tests of utils.analysis.psychometric (chapter 7)."""

import numpy as np
import pytest

from utils.analysis.psychometric import (choice_fractions, cumulative_gaussian, fit_psychometric,
                                         optimal_sigma)


def test_cumulative_gaussian_values():
    assert cumulative_gaussian(12.5, 12.5, 2.0) == pytest.approx(0.5)
    assert cumulative_gaussian(14.5, 12.5, 2.0) == pytest.approx(0.841345, rel=1e-5)
    with pytest.raises(ValueError, match="sigma"):
        cumulative_gaussian(1.0, 0.0, 0.0)


def test_fit_recovers_parameters():
    rng = np.random.default_rng(0)
    x = np.repeat(np.arange(9, 17), 400).astype(float)
    for mu, sigma in [(12.5, 1.0), (11.8, 2.5)]:
        y = rng.random(x.size) < cumulative_gaussian(x, mu, sigma)
        fit = fit_psychometric(x, y)
        assert fit.mu == pytest.approx(mu, abs=0.15)
        assert fit.sigma == pytest.approx(sigma, rel=0.12)
        assert fit(mu) == pytest.approx(0.5, abs=0.05)


def test_fit_of_a_flat_observer_is_wide_and_a_perfect_one_narrow():
    x = np.repeat(np.arange(9, 17), 50).astype(float)
    flat = fit_psychometric(x, np.tile([True, False], x.size // 2))
    assert flat.sigma > 20
    step = fit_psychometric(x, x > 12.5)
    assert step.sigma < 0.3 and step.mu == pytest.approx(12.5, abs=0.5)


def test_choice_fractions_and_errors():
    v, f, n = choice_fractions([1, 1, 2, 2, 2], [1, 0, 1, 1, 0])
    assert v.tolist() == [1, 2] and f.tolist() == pytest.approx([0.5, 2 / 3]) and n.tolist() == [2, 3]
    with pytest.raises(ValueError, match="equal length"):
        choice_fractions([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        choice_fractions([1, np.nan], [1, 0])
    with pytest.raises(ValueError, match="two distinct"):
        fit_psychometric([3, 3], [1, 0])


def test_optimal_sigma():
    assert optimal_sigma(1.0, 1.0) == pytest.approx(1 / np.sqrt(2))
    assert optimal_sigma(3.0, 4.0) == pytest.approx(12 / 5)
    with pytest.raises(ValueError, match="sigma_1"):
        optimal_sigma(0.0, 1.0)
