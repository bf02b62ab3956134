"""Tests of the d' selectivity (utils.analysis.selectivity), utils.analysis.pca and answers, the answer mask of NeurogymTask and utils.tasks.streams (chapter 4)."""

import numpy as np
import pytest
import torch

from utils.analysis.answers import answer_accuracy, answer_runs
from utils.analysis.pca import fit_pca
from utils.analysis.selectivity import (action_masks, max_abs_selectivity, max_activation,
                                        monte_carlo_selectivity, selectivity)
from utils.tasks import NeurogymTask, TaskBatch
from utils.tasks.streams import chain_trials


def test_selectivity_known_values_and_batches():
    x = torch.tensor([1.0, 3.0, 0.0, 2.0, 5.0, 5.0])[:, None]       # one unit
    a = torch.tensor([True, True, False, False, False, False])
    b = torch.tensor([False, False, True, True, False, False])
    # means 2 and 1, variances 1 and 1: d' = 1 / sqrt(1) = 1
    assert selectivity(x, a, b).item() == pytest.approx(1.0, abs=1e-5)
    assert selectivity(x, b, a).item() == pytest.approx(-1.0, abs=1e-5)
    # batch of sequences: per-sequence values
    xb = torch.stack([x, 2 * x], dim=1)                                 # (6, 2, 1)
    ab, bb = torch.stack([a, a], 1), torch.stack([b, b], 1)
    torch.testing.assert_close(selectivity(xb, ab, bb), torch.ones(2, 1), atol=1e-4, rtol=1e-4)
    # a silent unit has d' = 0, not NaN
    assert selectivity(torch.zeros(6, 1), a, b).item() == 0.0
    assert max_activation(x).item() == 5.0
    torch.testing.assert_close(max_abs_selectivity(torch.tensor([[-3.0, 1.0], [2.0, -0.5]])),
                               torch.tensor([3.0, 1.0]))
    with pytest.raises(ValueError, match="when_a"):
        selectivity(x, a[:5], b)


class _ToyModel(torch.nn.Module):
    """Unit 0 follows input 0 strongly, unit 1 is noise, unit 2 is silent; output = input 0 > 0.5."""

    def forward(self, u):
        states = torch.stack([3.0 * u[..., 0], u[..., 1], torch.zeros_like(u[..., 0])], dim=-1)
        out = torch.stack([-u[..., 0], u[..., 0], torch.zeros_like(u[..., 0])], dim=-1)
        return out, states


def test_action_masks_and_monte_carlo_removes_silent_units():
    gen = torch.Generator().manual_seed(0)
    T, S = 60, 10
    u = torch.stack([(torch.arange(T) % 2).float()[:, None].expand(T, S),
                     torch.rand(T, S, generator=gen)], dim=-1)
    out, _ = _ToyModel()(u)
    masks = action_masks(out, {"on/off": ((1,), (0,))})
    assert bool((masks["on/off"][0] == (u[..., 0] > 0.5)).all())
    mc = monte_carlo_selectivity(_ToyModel(), u, {"on/off": ((1,), (0,)), "x": ((2,), (0,))}, chunk=4)
    assert mc.per_sequence.shape == (10, 3)
    assert np.isnan(mc.per_sequence[:, 2]).all()
    assert (mc.per_sequence[:, 0] > 5).all() and (mc.per_sequence[:, 1] < 1).all()
    assert mc.values.shape == (20,) and mc.active_fraction == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="comparisons"):
        action_masks(out, {"bad": ((3,), (0,))})


def test_pca_recovers_dominant_direction():
    gen = torch.Generator().manual_seed(0)
    direction = torch.tensor([3.0, 4.0, 0.0]) / 5
    x = torch.randn(500, 1, generator=gen) * 10 * direction + 0.1 * torch.randn(500, 3, generator=gen)
    pca = fit_pca(x + 2.0, n_components=2)
    assert abs(float(pca.components[0] @ direction.double())) > 0.999
    assert pca.explained_variance_ratio[0] > 0.99
    assert pca.transform(x).shape == (500, 2)
    with pytest.raises(ValueError, match="n_components"):
        fit_pca(x, n_components=4)


def _toy_batch():
    # two columns; column 0 has answers at steps 1-2 and 5, column 1 at step 3 and 6-7
    dec = torch.zeros(8, 2, dtype=torch.bool)
    dec[1:3, 0] = dec[5, 0] = True
    dec[3, 1] = True
    dec[6:8, 1] = True
    targets = torch.zeros(8, 2, dtype=torch.long)
    targets[dec[:, 0], 0] = torch.tensor([1, 1, 2])
    targets[dec[:, 1], 1] = torch.tensor([2, 1, 1])
    return TaskBatch(torch.zeros(8, 2, 1), targets, torch.ones(8, 2, dtype=torch.bool), dec, [])


def test_answer_runs_and_accuracy():
    batch = _toy_batch()
    assert answer_runs(batch.decision) == [[(1, 3), (5, 6)], [(3, 4), (6, 8)]]
    perfect = torch.nn.functional.one_hot(batch.targets, 3).float()
    np.testing.assert_allclose(answer_accuracy(perfect, batch, 2), [1.0, 1.0])
    wrong_second = perfect.clone()
    wrong_second[5, 0] = torch.tensor([0.0, 1.0, 0.0])   # column 0's second answer: 1 instead of 2
    np.testing.assert_allclose(answer_accuracy(wrong_second, batch, 2), [1.0, 0.5])
    np.testing.assert_allclose(answer_accuracy(wrong_second, batch), [0.75])
    empty = TaskBatch(batch.inputs, batch.targets, batch.valid, torch.zeros_like(batch.decision), [])
    with pytest.raises(ValueError, match="answer"):
        answer_accuracy(perfect, empty)


def test_dual_delay_answer_mask_and_streams():
    task = NeurogymTask("DualDelayMatchSample-v0", seed=3, dt=100)
    batch = task.batch(6)
    env = task.env
    # answers are due in test1 and test2 (neurogym 2.3.1 has no "decision" period here)
    for p in ("test1", "test2"):
        assert bool(batch.decision[env.start_ind[p]: env.end_ind[p]].all())
    assert int(batch.decision[:, 0].sum()) == (env.end_ind["test1"] - env.start_ind["test1"]) * 2
    assert bool((batch.targets[batch.decision] > 0).all())
    assert bool((batch.targets[~batch.decision] == 0).all())
    streams = chain_trials(batch, 3)
    T = batch.inputs.shape[0]
    assert streams.inputs.shape == (3 * T, 2, 7)
    torch.testing.assert_close(streams.inputs[T: 2 * T, 1], batch.inputs[:, 4])
    torch.testing.assert_close(streams.targets[2 * T:, 0], batch.targets[:, 2])
    assert len(answer_runs(streams.decision)[0]) == 6
    assert streams.trials[1]["trials"] == batch.trials[3:6]


def test_streams_of_unequal_trials():
    task = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, dt=100)
    batch = task.batch(4)
    lengths = batch.valid.sum(0)
    streams = chain_trials(batch, 2)
    assert streams.valid.sum(0).tolist() == [int(lengths[0] + lengths[1]), int(lengths[2] + lengths[3])]
    n0 = int(lengths[0])
    torch.testing.assert_close(streams.inputs[n0: n0 + int(lengths[1]), 0], batch.inputs[: int(lengths[1]), 1])
    with pytest.raises(ValueError, match="trials_per_stream"):
        chain_trials(batch, 5)


def test_answer_periods_argument():
    task = NeurogymTask("DualDelayMatchSample-v0", seed=0, dt=100, answer_periods=["test2"])
    b = task.batch(2)
    env = task.env
    assert int(b.decision[:, 0].sum()) == env.end_ind["test2"] - env.start_ind["test2"]
    pdm = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, dt=100).batch(2)
    assert bool(pdm.decision.any())          # tasks with a decision period keep it
    with pytest.raises(ValueError, match="answer_periods"):
        NeurogymTask("DualDelayMatchSample-v0", seed=0, answer_periods=["decision"]).batch(1)
    with pytest.raises(TypeError, match="answer_periods"):
        NeurogymTask("DualDelayMatchSample-v0", seed=0, answer_periods="test1")


def test_answer_loss_and_class_weights():
    from utils.models.light_gru import LightGRU
    from utils.training.weighted_losses import answer_loss, class_weights

    w = class_weights(torch.tensor([0, 0, 0, 1, 2, 2]), 4)
    torch.testing.assert_close(w, torch.tensor([0.5, 1.5, 0.75, 0.0]))
    with pytest.raises(ValueError, match="targets"):
        class_weights(torch.tensor([0, 5]), 3)
    batch = chain_trials(NeurogymTask("DualDelayMatchSample-v0", seed=0, dt=100).batch(4), 2)
    torch.manual_seed(0)
    model = LightGRU(7, 8, 3)
    plain, metrics = answer_loss(model, batch, answers_per_trial=2)
    torch.manual_seed(0)
    model = LightGRU(7, 8, 3)
    penalised, _ = answer_loss(model, batch, activity_l2=0.1, answers_per_trial=2)
    _, states = model(batch.inputs)
    expected = plain + 0.1 * states.norm(dim=-1).mean()
    torch.testing.assert_close(penalised, expected, rtol=1e-4, atol=1e-5)
    assert set(metrics) == {"accuracy", "task_loss", "mean_activity"} and 0 <= metrics["accuracy"] <= 1
