"""Tests of utils.tasks.multisensory (chapter 7: the task of Raposo et al. 2012)."""

import math

import numpy as np
import pytest
import torch

from utils.tasks.multisensory import (BOUNDARY, FREQS, MODALITIES, choices, condition_grid,
                                      criterion_reached, input_mask, multisensory_trials,
                                      percent_correct, sample_batch, tuned_inputs)


def test_tuned_inputs_span_and_sum():
    pos, neg = tuned_inputs(np.array(FREQS))
    assert pos[0] == pytest.approx(0.4) and pos[-1] == pytest.approx(1.2)
    assert neg[0] == pytest.approx(1.2) and neg[-1] == pytest.approx(0.4)
    assert np.allclose(pos + neg, 1.6)


def test_trial_structure_without_noise():
    b = multisensory_trials(["v", "a", "va", "catch"], np.array([9.0, 16.0, 13.0, np.nan]),
                            sigma_in=0.0)
    assert b.inputs.shape == (125, 4, 5)          # padded to the 2500 ms catch trial
    assert b.end.tolist() == [69, 69, 69, 124]
    x = b.inputs - 0.2                             # baseline removed
    assert torch.allclose(x[:5], torch.zeros(5, 4, 5))               # fixation: baseline only
    assert torch.allclose(x[5:55, 0, 0], torch.full((50,), 0.4))     # visual+, f = 9
    assert torch.allclose(x[5:55, 0, 2], torch.full((50,), 1.2))     # visual-, f = 9
    assert torch.allclose(x[5:55, 0, [1, 3]], torch.zeros(50, 2))    # no auditory input
    assert torch.allclose(x[5:55, 1, [1, 3]], torch.tensor([1.2, 0.4]).expand(50, 2))
    assert torch.allclose(x[55:70, :3, :4], torch.zeros(15, 3, 4))   # decision: no stimulus
    assert torch.allclose(x[5:70, :3, 4], torch.ones(65, 3))         # start cue
    assert torch.allclose(x[:, 3], torch.zeros(125, 5))              # catch: baseline only
    assert b.choice.tolist() == [1, 0, 0, -1]
    assert b.catch.tolist() == [False, False, False, True]
    # targets and mask
    assert torch.allclose(b.targets[55:70, 0], torch.tensor([0.2, 1.0]).expand(15, 2))
    assert torch.allclose(b.targets[55:70, 1], torch.tensor([1.0, 0.2]).expand(15, 2))
    assert b.mask[:5, 0].sum() == 10 and b.mask[5:55, 0].sum() == 0 and b.mask[55:70, 0].sum() == 30
    assert b.mask[70:, 0].sum() == 0 and b.mask[:, 3].sum() == 250
    assert torch.allclose(b.targets[:, 3], torch.full((125, 2), 0.2))


def test_test_timing_and_noise_statistics():
    b = multisensory_trials(["va"] * 2000, np.full(2000, 12.0), fixation=500.0,
                            generator=torch.Generator().manual_seed(0))
    assert b.inputs.shape[0] == 90 and int(b.end[0]) == 89
    noise = b.inputs[:25, :, :4] - 0.2        # fixation: pure noise around the baseline
    assert noise.std().item() == pytest.approx(math.sqrt(2 * 100 / 20) * 0.01, rel=0.02)
    assert torch.all(b.inputs >= 0)
    with pytest.raises(ValueError, match="multiples of dt"):
        multisensory_trials(["v"], [9.0], fixation=110.0)
    with pytest.raises(ValueError, match="modality"):
        multisensory_trials(["x"], [9.0])
    with pytest.raises(ValueError, match="freq"):
        multisensory_trials(["v", "a"], [9.0])


def test_sample_batch_statistics():
    g = torch.Generator().manual_seed(1)
    b = sample_batch(5000, generator=g, sigma_in=0.0)
    assert abs(b.catch.mean() - 0.2) < 0.02
    f = b.freq[~b.catch]
    assert set(np.unique(f)) == set(float(x) for x in FREQS)
    assert abs((f > BOUNDARY).mean() - 0.5) < 0.03
    mods = np.array(b.modality)[~b.catch]
    for m in MODALITIES:
        assert abs((mods == m).mean() - 1 / 3) < 0.03
    again = sample_batch(5000, generator=torch.Generator().manual_seed(1), sigma_in=0.0)
    assert again.modality == b.modality
    with pytest.raises(TypeError, match="generator"):
        sample_batch(3, generator=None)


def test_condition_grid_is_the_paper_validation_set():
    mod, freq = condition_grid(100, n_catch=100)
    assert len(mod) == 2500 and mod.count("catch") == 100
    for m in MODALITIES:
        for f in FREQS:
            assert sum(1 for a, b in zip(mod, freq) if a == m and b == f) == 100


def test_choices_and_percent_correct():
    b = multisensory_trials(["v", "a", "va", "catch"], np.array([9.0, 16.0, 13.0, np.nan]),
                            sigma_in=0.0)
    out = torch.zeros(125, 4, 2)
    out[69, 0] = torch.tensor([0.2, 1.0])    # low: correct (f = 9)
    out[69, 1] = torch.tensor([0.2, 1.0])    # low: wrong (f = 16)
    out[69, 2] = torch.tensor([1.0, 0.2])    # high: correct (f = 13)
    out[10, 1] = torch.tensor([9.0, 0.0])    # not at the end: ignored
    assert choices(out, b).tolist()[:3] == [1, 1, 0]
    assert percent_correct(out, b) == pytest.approx(200 / 3)
    assert percent_correct(out, b, "a") == 0.0
    with pytest.raises(ValueError, match="modality"):
        percent_correct(out, b, "catch")


def test_input_mask_paper_split_and_variants():
    m = input_mask()
    vis = torch.nonzero(m[:, 0]).flatten().tolist()
    aud = torch.nonzero(m[:, 1]).flatten().tolist()
    assert vis == list(range(40)) + list(range(120, 130))
    assert aud == list(range(40, 80)) + list(range(130, 140))
    assert torch.equal(m[:, 0], m[:, 2]) and torch.equal(m[:, 1], m[:, 3])
    assert m[:, 4].sum() == 0 and (m.sum(1) == 0).sum() == 50
    m2 = input_mask(150, 0.8, visual=0.5, auditory=0.5)
    assert (m2.sum(1) == 0).sum() == 0
    with pytest.raises(ValueError, match="visual"):
        input_mask(visual=0.7, auditory=0.5)


def test_criterion_reached_is_the_mean_of_the_last_five():
    assert not criterion_reached([])
    assert not criterion_reached([50, 100, 100, 100, 100])     # mean 90 is not > 90
    assert criterion_reached([50, 100, 100, 100, 100, 100])
    assert criterion_reached([91.0])
    assert not criterion_reached([95, 95, 95, 95, 70])
