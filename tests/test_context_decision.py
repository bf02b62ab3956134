"""Tests of the go signal (utils.tasks.go_signal) and the context-decision analyses
(utils.analysis.context_decision), chapter 5."""

import numpy as np
import pytest
import torch

from utils.analysis.context_decision import (
    accuracy_by,
    decision_outcomes,
    ideal_observer_accuracy,
    ideal_observer_choices,
    relevant_coherence,
    stream_trials,
)
from utils.tasks import NeurogymTask, TaskBatch
from utils.tasks.go_signal import add_go_signal
from utils.tasks.streams import chain_trials


@pytest.fixture(scope="module")
def trials():
    task = NeurogymTask("ContextDecisionMaking-v0", seed=0, dt=100, use_expl_context=True)
    return task.batch(400)


def test_neurogym_switches_the_fixation_input_off_early(trials):
    # the reason for the wrapper: in neurogym 2.3.1 the fixation input is on for 3 steps only,
    # so the delay and the decision step look alike
    assert trials.inputs.shape[-1] == 7
    assert bool((trials.inputs[:3, :, 0] == 1).all()) and float(trials.inputs[3:, :, 0].abs().sum()) == 0.0


def test_go_signal_on_until_the_answer(trials):
    cued = add_go_signal(trials)
    first = trials.decision.to(torch.int8).argmax(0)
    for j in range(len(trials)):
        cue = cued.inputs[:, j, 0]
        assert bool((cue[: first[j]] == 1).all()) and bool((cue[first[j]:] == 0).all())
    # the other channels, the targets and the original batch are untouched
    torch.testing.assert_close(cued.inputs[..., 1:], trials.inputs[..., 1:])
    assert float(trials.inputs[3:, :, 0].abs().sum()) == 0.0
    assert cued.targets is trials.targets
    # padding stays 0
    assert float(cued.inputs[..., 0][~trials.valid].abs().sum()) == 0.0


def test_go_signal_rejects_bad_input(trials):
    with pytest.raises(TypeError, match="batch"):
        add_go_signal(trials.inputs)
    with pytest.raises(ValueError, match="channel"):
        add_go_signal(trials, channel=7)
    no_answer = TaskBatch(trials.inputs[:, :2], trials.targets[:, :2], trials.valid[:, :2],
                          torch.zeros_like(trials.decision[:, :2]))
    with pytest.raises(ValueError, match="answer step"):
        add_go_signal(no_answer)


def test_ideal_observer_formula_and_simulation(trials):
    # 7 stimulus steps of noise 0.1 at coherences 5/15/50: 0.941 (chapter 5's number)
    assert ideal_observer_accuracy([5, 15, 50], 7, 0.1) == pytest.approx(0.9409, abs=1e-4)
    assert ideal_observer_accuracy([50], 7, 0.1) == pytest.approx(1.0, abs=1e-9)
    assert ideal_observer_accuracy([0], 7, 0.1) == pytest.approx(0.5)
    ok = ideal_observer_choices(trials) == trials.trial_values("ground_truth")
    by = accuracy_by(ok, relevant_coherence(trials.trials))
    assert by[50] == 1.0 and by[5] < 0.95 and 0.85 < ok.mean() < 0.99
    with pytest.raises(ValueError, match="n_steps"):
        ideal_observer_accuracy([5], 0, 0.1)
    with pytest.raises(ValueError, match="7 inputs"):
        ideal_observer_choices(TaskBatch(torch.zeros(3, 2, 5), torch.zeros(3, 2, dtype=torch.long),
                                         torch.ones(3, 2, dtype=torch.bool),
                                         torch.ones(3, 2, dtype=torch.bool)))


def test_decision_outcomes_follow_trials_through_streams(trials):
    streams = chain_trials(add_go_signal(trials), 10)
    order = stream_trials(streams)
    assert order == trials.trials[: len(order)]
    # a fake network that outputs the correct action everywhere: all correct
    perfect = torch.nn.functional.one_hot(streams.targets, 3).float()
    choices, correct = decision_outcomes(perfect, streams)
    assert correct.all() and len(choices) == len(order)
    np.testing.assert_array_equal(choices, [tr["ground_truth"] for tr in order])
    # always choice 1: correct exactly on the trials whose answer is 1
    ones = torch.zeros_like(perfect)
    ones[..., 1] = 1.0
    _, correct = decision_outcomes(ones, streams)
    np.testing.assert_array_equal(correct, [tr["ground_truth"] == 1 for tr in order])
    assert accuracy_by(np.array([True, False, True]), [0, 0, 1]) == {0: 0.5, 1: 1.0}
    with pytest.raises(ValueError, match="one entry per trial"):
        accuracy_by(np.array([True]), [0, 1])
    with pytest.raises(ValueError, match="context"):
        relevant_coherence([{"coh": 5}])


def test_streams_of_unequal_trials_are_the_trials_concatenated(trials):
    # chain_trials' one-gather path against a plain per-stream concatenation
    streams = chain_trials(trials, 7)
    lengths = trials.valid.sum(0).tolist()
    for s in range(len(trials) // 7):
        cols = range(7 * s, 7 * s + 7)
        for got, src in [(streams.inputs, trials.inputs), (streams.targets, trials.targets),
                         (streams.decision, trials.decision)]:
            want = torch.cat([src[: lengths[c], c] for c in cols])
            assert torch.equal(got[: len(want), s], want)
            assert not bool(got[len(want):, s].bool().any())
        assert int(streams.valid[:, s].sum()) == sum(lengths[c] for c in cols)
    # every trial's single answer run is found, in order
    choices, _ = decision_outcomes(torch.nn.functional.one_hot(streams.targets, 3).float(), streams)
    assert len(choices) == 7 * (len(trials) // 7)
