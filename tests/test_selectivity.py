"""Tests of utils.analysis.selectivity (chapter 7)."""

import numpy as np
import pytest
import torch

from utils.analysis.selectivity import classify_units, preference_index


def test_preference_index_extremes_and_sign():
    a = np.array([[3.0, 1.0, 0.0], [4.0, 2.0, 0.0]])
    b = np.array([[1.0, 3.0, 0.0], [2.0, 4.0, 0.0], [0.0, 5.0, 0.0]])
    idx = preference_index(a, b)
    assert idx.tolist() == pytest.approx([1.0, -1.0, 0.0])      # ties count one half
    assert preference_index(torch.tensor(b), torch.tensor(a)).tolist() == pytest.approx([-1, 1, 0])


def test_preference_index_matches_auc_for_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, size=(4000, 1))
    b = rng.normal(0.0, 1.0, size=(4000, 1))
    # AUC of two unit-variance Gaussians one apart: Phi(1 / sqrt 2) = 0.7602
    assert preference_index(a, b)[0] == pytest.approx(2 * 0.7602 - 1, abs=0.02)
    with pytest.raises(ValueError, match="same number"):
        preference_index(a, np.zeros((3, 2)))


def test_classify_units():
    labels = classify_units([0.5, 0.1, -0.6, 0.0, 0.9], [0.0, -0.4, 0.5, 0.1, 0.9],
                            active=[True, True, True, True, False])
    assert labels.tolist() == ["choice", "modality", "mixed", "neither", "inactive"]
    with pytest.raises(ValueError, match="threshold"):
        classify_units([0.1], [0.1], threshold=0.0)
