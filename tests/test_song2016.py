"""Tests of utils.training.song2016 and utils.tasks.multisensory.modality_report (chapter 7)."""

import numpy as np
import pytest
import torch

from utils.models.ei_rate import EIRateRNN
from utils.tasks.multisensory import (condition_grid, input_mask, modality_report,
                                      multisensory_trials, sample_batch)
from utils.training.song2016 import train_song2016, validation_accuracy


def _setup():
    torch.manual_seed(0)
    model = EIRateRNN(5, 30, 2, input_mask=input_mask(30), seed=0)
    val = multisensory_trials(*condition_grid(2), generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    return model, val, lambda: sample_batch(4, generator=gen)


def test_checks_are_recorded_and_the_rule_stops_training():
    model, val, batch_fn = _setup()
    h = train_song2016(model, batch_fn, 7, validation=val, check_every=3, progress=False)
    assert len(h) == 7 and len(h["validation"]) == 3        # after updates 1, 4, 7
    assert all(0 <= v <= 100 for v in h["validation"]) and "omega" in h
    # a threshold of 0 is exceeded at the first check: training stops after one update
    model, val, batch_fn = _setup()
    h = train_song2016(model, batch_fn, 50, validation=val, check_every=5, threshold=0.0,
                       progress=False)
    assert h.stopped_at == 1
    h = train_song2016(model, batch_fn, 4, validation=val, check_every=5, threshold=0.0,
                       stop_at_criterion=False, progress=False, history=h)
    assert len(h) == 5
    with pytest.raises(TypeError, match="validation"):
        train_song2016(model, batch_fn, 3, validation=None)


def test_validation_accuracy_and_modality_report_agree():
    model, _, _ = _setup()
    batch = multisensory_trials(*condition_grid(5), generator=torch.Generator().manual_seed(3))
    torch.manual_seed(4)
    acc = validation_accuracy(model, batch)
    torch.manual_seed(4)
    rep = modality_report(model, batch)
    assert np.mean(list(rep["accuracy"].values())) == pytest.approx(acc)
    assert set(rep["fit"]) == {"v", "a", "va"} and len(rep["choices"]) == 120
