"""Tests of utils.checks.multisensory_variations (Lab 8) and utils.analysis.spread (chapter 8):
the references pass, broken versions fail, the spread criterion is what its docstring says."""

import numpy as np
import pytest
import torch

from utils.analysis.spread import compare_to_spread
from utils.checks.multisensory_variations import (
    BASELINE,
    check_my_variant,
    check_spread_test,
    check_variant_input_mask,
    reference_my_variant,
    reference_spread_test,
    reference_variant_input_mask,
    variant_problems,
)


def test_compare_to_spread_values_and_arguments():
    c = compare_to_spread([1.0, 2.0, 3.0], [5.0, 6.0, 7.0])
    assert c.difference == pytest.approx(4.0)
    assert c.stderr == pytest.approx(np.sqrt(2 / 3))          # var 1 each, n 3 each
    assert c.exceeds
    c = compare_to_spread([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert c.difference == pytest.approx(1.0) and not c.exceeds
    assert compare_to_spread([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], factor=1.0).exceeds
    assert compare_to_spread(torch.tensor([0.0, 1.0]), np.array([3.0, 4.0, 5.0, 6.0])).exceeds
    with pytest.raises(ValueError, match="reference"):
        compare_to_spread([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="variant"):
        compare_to_spread([1.0, 2.0], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="factor"):
        compare_to_spread([1.0, 2.0], [1.0, 2.0], factor=0.0)


def test_references_pass():
    assert check_variant_input_mask(reference_variant_input_mask, quiet=True).passed
    assert check_spread_test(reference_spread_test, quiet=True).passed
    assert check_my_variant(reference_my_variant, quiet=True).passed


def test_broken_versions_fail():
    def one_population(n, e_frac, v, a):        # splits all units at once, not E and I apart
        mask = torch.zeros(n, 5)
        n_v, n_a = int(v * n), int((v + a) * n) - int(v * n)
        mask[:n_v, [0, 2]] = 1
        mask[n_v:n_v + n_a, [1, 3]] = 1
        return mask

    def standard_deviation_not_error(ref, var):  # uses the spread of values, not of the means
        d, _, _ = reference_spread_test(ref, var)
        s = float(np.sqrt(np.var(ref, ddof=1) + np.var(var, ddof=1)))
        return d, s, abs(d) > 2 * s

    def reference_minus_variant(ref, var):
        d, se, ex = reference_spread_test(ref, var)
        return -d, se, ex

    assert not check_variant_input_mask(one_population, quiet=True).passed
    assert not check_spread_test(standard_deviation_not_error, quiet=True).passed
    assert not check_spread_test(reference_minus_variant, quiet=True).passed
    assert not check_my_variant(lambda: dict(BASELINE), quiet=True).passed
    assert not check_my_variant(lambda: {"e_frac": 0.5}, quiet=True).passed


def test_variant_problems_names_what_is_wrong():
    assert variant_problems(reference_my_variant()) == []
    assert variant_problems({"e_frac": 0.8, "visual": 1 / 3, "auditory": 1 / 3, "cues": True}) == []
    assert "sum" in variant_problems({"e_frac": 0.8, "visual": 0.7, "auditory": 0.5, "cues": False})[0]
    assert "e_frac" in variant_problems({"e_frac": 0.99, "visual": 0.3, "auditory": 0.3, "cues": False})[0]
    assert "10%" in variant_problems({"e_frac": 0.8, "visual": 0.9, "auditory": 0.0, "cues": False})[0]
    assert "True or False" in variant_problems({"e_frac": 0.8, "visual": 0.3, "auditory": 0.3, "cues": 1})[0]
    assert "dict" in variant_problems([0.8])[0]


def test_variant_network_has_the_variants_inputs_and_cell_types():
    from utils.tasks.multisensory_variations import variant_network

    net = variant_network(e_frac=0.5, visual=0.6, auditory=0.3, cues=True, seed=1)
    assert net.n_input == 7 and net.n_exc == 75
    assert int((net.in_mask.sum(1) == 0).sum()) > 0          # some units get no input
    assert torch.equal(net.in_mask[:, 5], net.in_mask[:, 0])  # the visual cue reaches visual units
    plain = variant_network(seed=1)
    assert plain.n_input == 5 and plain.n_exc == 120
    with pytest.raises(TypeError, match="cues"):
        variant_network(cues="yes")
