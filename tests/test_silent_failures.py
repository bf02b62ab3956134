"""Each case here returned a silent wrong answer or an obscure error before (the hardening issue):
training on after inf/NaN, loading buffers the constructor refuses, neurogym tasks that cannot be
batched, unchecked shapes."""

import math

import pytest
import torch

from utils.models import LightGRU, LowRankRNN, RateRNN
from utils.models.dendritic import DendriticInput
from utils.models.rate import constrained_step
from utils.tasks import NeurogymTask
from utils.tasks.neurogym_tasks import make_env
from utils.training import cross_entropy_loss, train


def _regression_loss(model, batch):
    outputs, _ = model(batch[0])
    return ((outputs - batch[1]) ** 2).mean(), {}


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(10, 4, 3, generator=g), torch.randn(10, 4, 2, generator=g)


def test_train_stops_with_a_clear_error_at_the_first_nonfinite_loss():
    model = RateRNN(3, 16, 2)
    x, y = _batch()
    y[0, 0, 0] = float("nan")  # a NaN target: the loss is NaN at the first update
    with pytest.raises(FloatingPointError, match=r"update 0: the loss is nan.*clip_grad"):
        train(model, lambda: (x, y), 5, loss_fn=_regression_loss, progress=False)


def test_train_stops_at_a_nonfinite_parameter_and_the_opt_outs_keep_the_history():
    x, y = _batch()

    def blow_up(model, batch, step):  # an update rule that sends one weight to inf at update 2
        if step == 2:
            with torch.no_grad():
                model.bias[0] = math.inf
        return 1.0, {}

    with pytest.raises(FloatingPointError, match=r"update 2: parameter 'bias'"):
        train(RateRNN(3, 16, 2), lambda: (x, y), 6, update_fn=blow_up, progress=False)
    h = train(RateRNN(3, 16, 2), lambda: (x, y), 6, update_fn=blow_up, progress=False,
              on_nonfinite="stop")
    assert h.diverged_at == 2 and h.stopped_at == 3 and len(h["loss"]) == 3
    h = train(RateRNN(3, 16, 2), lambda: (x, y), 6, update_fn=blow_up, progress=False,
              on_nonfinite="continue")
    assert h.stopped_at == 6 and h.diverged_at is None
    with pytest.raises(ValueError, match="on_nonfinite"):
        train(RateRNN(3, 16, 2), lambda: (x, y), 2, update_fn=blow_up, on_nonfinite="ignore")


def test_train_on_finite_losses_is_unchanged():
    x, y = _batch()
    h = train(RateRNN(3, 16, 2), lambda: (x, y), 3, loss_fn=_regression_loss, progress=False)
    assert h.diverged_at is None and len(h["loss"]) == 3 and all(map(math.isfinite, h["loss"]))


@pytest.mark.parametrize("key, value, match", [
    ("weight_scale", torch.tensor(-1.0), "weight_scale.*finite and positive"),
    ("mask", -torch.ones(16, 16), "mask.*zeros and ones"),
    ("signs", torch.ones(16), "signs.*excitatory"),
])
def test_rate_rnn_refuses_buffers_its_constructor_would_refuse(key, value, match):
    model = RateRNN(3, 16, 2, dale=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = model.state_dict()
    state[key] = value
    with pytest.raises(ValueError, match=match):
        model.load_state_dict(state)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # untouched
    model.load_state_dict(before)  # a valid state still loads


def test_other_models_check_their_loaded_buffers():
    gru = LightGRU(3, 8, 2, dale="rectify", n_branches=2)
    state = gru.state_dict()
    state["signs"] = torch.ones(8)
    with pytest.raises(ValueError, match="signs"):
        gru.load_state_dict(state)
    state = gru.state_dict()
    state["block_mask"] = torch.ones_like(state["block_mask"])
    with pytest.raises(ValueError, match="block_mask"):
        gru.load_state_dict(state)
    dend = RateRNN(3, 8, 2, n_branches=2)
    state = dend.state_dict()
    state["input_layer.block_mask"] = torch.ones_like(state["input_layer.block_mask"])
    with pytest.raises(ValueError, match=r"input_layer\.block_mask"):
        dend.load_state_dict(state)
    lr = LowRankRNN(20, 1, 1)
    state = lr.state_dict()
    state["w"] = torch.full_like(state["w"], float("nan"))
    with pytest.raises(ValueError, match="'w'.*inf or NaN"):
        lr.load_state_dict(state)


@pytest.mark.parametrize("name, match", [
    ("Bandit-v0", "does not compute its trials in advance"),
    ("DawTwoStep-v0", "does not compute its trials in advance"),
    ("EconomicDecisionMaking-v0", "does not compute its trials in advance"),
    ("Null-v0", "does not compute its trials in advance"),
    ("ReachingDelayResponse-v0", "continuous action space"),
    ("SpatialSuppressMotion-v0", "continuous action space"),
])
def test_neurogym_tasks_that_cannot_be_batched_are_refused_by_name(name, match):
    with pytest.raises(ValueError, match=f"{name}.*{match}"):
        NeurogymTask(name)


def test_probing_a_task_does_not_change_its_trials():
    a = NeurogymTask("PerceptualDecisionMaking-v0", seed=3, dt=100).batch(4)
    env = make_env("PerceptualDecisionMaking-v0", dt=100)  # the same trials, without the probe
    env.seed(3)
    env.new_trial()
    assert torch.equal(a.inputs[: len(env.ob), 0], torch.as_tensor(env.ob, dtype=torch.float32))


def test_shape_checks_name_the_argument():
    x = torch.zeros(2, 5)
    w, s, m, d = torch.zeros(5, 5), torch.ones(5), torch.ones(5, 5), torch.zeros(2, 5)
    constrained_step(x, w, s, m, d, 0.2)
    for bad, name in [((x, torch.zeros(4, 4), s, m, d), "weight"), ((x, w, torch.ones(4), m, d), "signs"),
                      ((x, w, s, torch.ones(5, 4), d), "mask")]:
        with pytest.raises(ValueError, match=name):
            constrained_step(*bad, 0.2)
    layer = DendriticInput(3, 4, 2)
    assert layer(torch.zeros(7, 3)).shape == (7, 4)
    with pytest.raises(ValueError, match="n_input"):
        layer(torch.zeros(7, 5))
    batch = NeurogymTask("PerceptualDecisionMaking-v0", seed=0, dt=100).batch(3)
    T, B = batch.targets.shape
    assert torch.isfinite(cross_entropy_loss(torch.zeros(T, B, 3), batch))
    with pytest.raises(ValueError, match="match the batch"):
        cross_entropy_loss(torch.zeros(T, B + 1, 3), batch)
    with pytest.raises(ValueError, match="n_output must be at least 3"):
        cross_entropy_loss(torch.zeros(T, B, 2), batch)
    with pytest.raises(ValueError, match="time, batch, actions"):
        cross_entropy_loss(torch.zeros(T, B), batch)


def test_ei_rate_rnn_refuses_invalid_buffers():
    from utils.models import EIRateRNN

    model = EIRateRNN(5, 20, 2)
    for key, value, match in [("signs", torch.ones(20), "signs"),
                              ("in_mask", -torch.ones(20, 5), "zeros and ones"),
                              ("rec_mask", torch.ones(20, 20), "self-connections"),
                              ("out_mask", torch.ones(2, 20), "excitatory units only")]:
        state = model.state_dict()
        state[key] = value
        with pytest.raises(ValueError, match=match):
            model.load_state_dict(state)
    model.load_state_dict(EIRateRNN(5, 20, 2, seed=3).state_dict())  # a valid state loads
