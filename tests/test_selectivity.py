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


def test_opponent_weights_find_planted_opponent_inhibition():
    from utils.analysis.selectivity import opponent_weights, preference_thirds

    torch.manual_seed(0)
    n, n_exc = 30, 24
    preference = torch.linspace(-1, 1, n_exc).repeat(1)  # E units: bottom, middle, top thirds
    preference = torch.cat([preference, torch.linspace(-1, 1, n - n_exc)])
    thirds = preference_thirds(preference[:n_exc])
    assert thirds.tolist().count(1) == 8 and thirds.tolist().count(-1) == 8
    w = torch.full((n, n), 0.1)
    signs = torch.cat([preference_thirds(preference[:n_exc]), preference_thirds(preference[n_exc:])])
    opposite = (signs[:, None] * signs[None, :]) == -1
    w[:n_exc, n_exc:][opposite[:n_exc, n_exc:]] = -0.5  # I -> E onto the other choice only
    got = opponent_weights(w, preference, n_exc)
    assert got["I->E opposite"] == pytest.approx(0.5) and got["I->E same"] == pytest.approx(0.1)
    assert got["E->I same"] == pytest.approx(0.1) == got["E->I opposite"]
    with pytest.raises(ValueError, match="preference"):
        opponent_weights(w, preference[:-1], n_exc)
    with pytest.raises(ValueError, match="n_exc"):
        opponent_weights(w, preference, 29)


def test_angle_to_feedback_alignment_compares_the_two_updates_of_w_hx():
    from utils.learning.dendritic_error import DendriticErrorNet
    from utils.learning.feedback_alignment import angle_between

    net = DendriticErrorNet(6, 5, 3, apical_gain=0.2, nudging=0.01, interneuron_nudging=0.5, seed=0)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    y = torch.randn(50, 3, generator=torch.Generator().manual_seed(2))
    angle = net.angle_to_feedback_alignment(x, y)
    local, fa = net.forward_updates(x, y)[1], net.fa_updates(x, y)[1]
    assert angle == pytest.approx(angle_between(local, fa))
    assert angle != pytest.approx(angle_between(net.forward_updates(x, y)[0], net.fa_updates(x, y)[0]))


def test_spatial_summary_collects_the_measures():
    from utils.constraints.spatial import distance_matrix, grid_positions, spatial_summary

    d = distance_matrix(grid_positions((2, 2, 2)))
    w = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    got = spatial_summary(w, d)
    assert set(got) == {"length", "short", "q", "communities", "clustering", "sparse"}
    assert 0.0 <= got["short"] <= 1.0 and got["length"] > 0
