import functools
import warnings

import pytest
import torch

from utils.analysis.decisions import (accuracy_by, decision_accuracy, evaluate,
                                      ideal_observer_accuracy)
from utils.models import RateRNN
from utils.tasks import NeurogymTask, batch_sampler
from utils.training import History, classification_loss, cross_entropy_loss, train

KW = dict(dt=20, timing={"stimulus": 200})


def test_same_seed_same_trials_and_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = NeurogymTask("PerceptualDecisionMaking-v0", seed=3, **KW).batch(16)
        b = NeurogymTask("PerceptualDecisionMaking-v0", seed=3, **KW).batch(16)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    c = NeurogymTask("PerceptualDecisionMaking-v0", seed=4, **KW).batch(16)
    assert not torch.equal(a.inputs, c.inputs)


def test_batch_layout_and_trial_info():
    task = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, **KW)
    batch = task.batch(8)
    T = batch.inputs.shape[0]
    assert batch.inputs.shape == (T, 8, 3) and batch.targets.shape == (T, 8)
    assert batch.decision.sum(0).min() > 0
    assert set(batch.decision_targets.tolist()) <= {1, 2}
    assert len(batch.trial_values("coh")) == 8
    with pytest.raises(ValueError, match="key must be one of"):
        batch.trial_values("nope")
    fixed = task.batch(4, coh=51.2)
    assert set(fixed.trial_values("coh").tolist()) == {51.2}


def test_unknown_task_gives_clear_error():
    with pytest.raises(ValueError, match="could not build neurogym task"):
        NeurogymTask("NoSuchTask-v0")


def test_batch_sampler_reproducible():
    pool = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, **KW).batch(50)
    a, b = batch_sampler(pool, 10, seed=1), batch_sampler(pool, 10, seed=1)
    assert torch.equal(a().inputs, b().inputs)
    with pytest.raises(ValueError, match="batch_size"):
        batch_sampler(pool, 51)
    with pytest.raises(TypeError, match="pool"):
        batch_sampler([1, 2], 1)


def test_decision_accuracy_of_perfect_outputs():
    batch = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, **KW).batch(20)
    perfect = torch.nn.functional.one_hot(batch.targets, 3).float() * 10
    assert decision_accuracy(perfect, batch) == 1.0
    assert set(accuracy_by(perfect, batch, "coh").values()) == {1.0}
    assert cross_entropy_loss(perfect, batch).item() < 1e-3


def test_ideal_observer():
    assert ideal_observer_accuracy(0.0, 1000, 20) == 0.5
    assert 0.9 < ideal_observer_accuracy(6.4, 1000, 20) < 0.95
    with pytest.raises(ValueError, match="dt"):
        ideal_observer_accuracy(6.4, 1000, 0)


def test_training_lowers_loss_and_records_history():
    torch.manual_seed(0)
    task = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, **KW)
    pool = task.batch(512)
    model = RateRNN(3, 32, 3, dale=True, sparsity=0.2)
    hist = train(model, batch_sampler(pool, 32), 60, lr=1e-2, progress=False,
                 loss_fn=functools.partial(classification_loss, decision_weight=3.0),
                 after_step=lambda m, s: {"violations": m.constraint_violations()}, clip_grad=1.0)
    assert len(hist) == 60 and isinstance(hist, History)
    assert hist.last("loss", 10) < 0.7 * hist["loss"][0]
    assert max(hist["violations"]) == 0
    ev = evaluate(model, task.batch, n_trials=100)
    assert 0.0 <= ev.accuracy <= 1.0 and ev.by_condition


def test_train_argument_errors():
    model = RateRNN(3, 8, 3)
    with pytest.raises(ValueError, match="n_updates"):
        train(model, lambda: None, 0)
    with pytest.raises(TypeError, match="model"):
        train("model", lambda: None, 1)
    with pytest.raises(ValueError, match="lr"):
        train(model, lambda: None, 1, lr=-1.0)
    with pytest.raises(KeyError, match="no metric"):
        History()["loss"]


def test_every_records_at_its_steps_and_the_last():
    from utils.training import every
    calls = []
    cb = every(3, lambda m: calls.append(m) or {"x": 1.0}, last=7)
    got = [bool(cb("model", step)) for step in range(8)]
    assert got == [True, False, False, True, False, False, True, True] and len(calls) == 4
    assert every(2, lambda m: {"y": 2.0})(None, 4) == {"y": 2.0}
    with pytest.raises(ValueError, match="n"):
        every(0, lambda m: {})
    with pytest.raises(TypeError, match="fn"):
        every(2, "not callable")


def test_history_last_checks_n_instead_of_averaging_everything():
    hist = History()
    for loss in (4.0, 3.0, 2.0, 1.0):
        hist.append(loss=loss)
    assert hist.last("loss") == 1.0 and hist.last("loss", 2) == 1.5 and hist.last("loss", 10) == 2.5
    for bad in (0, -1):  # [-0:] and [-(-1):] would average everything / all but the first
        with pytest.raises(ValueError, match="n must be >= 1"):
            hist.last("loss", bad)
    with pytest.raises(TypeError, match="n must be an integer"):
        hist.last("loss", 2.0)


def test_neurogym_task_refuses_unknown_trial_parameters_and_bad_timing():
    task = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, **KW)
    with pytest.raises(ValueError, match="no parameter 'coherence'.*'coh'"):
        task.batch(8, coherence=51.2)  # was: ignored, and stored in every trial's info
    assert {t["coh"] for t in task.batch(4, coh=51.2).trials} == {51.2}
    for dt in (0, -20, float("nan")):
        with pytest.raises(ValueError, match="dt must"):
            NeurogymTask("PerceptualDecisionMaking-v0", dt=dt)
    with pytest.raises(ValueError, match=r"timing\['stimulus'\] must lie in \[0, inf\]"):
        NeurogymTask("PerceptualDecisionMaking-v0", dt=20, timing={"stimulus": -500})


def test_unknown_neurogym_task_lists_known_tasks():
    with pytest.raises(ValueError, match=r"known tasks include \['\w+-v0'"):
        NeurogymTask("PerceptualDecisionMakin-v0")  # the hint was never shown with neurogym 2.3.1
