"""Tests of chapter 8's stacked E/I networks (utils.models.ei_stack) and seven-channel task
(utils.tasks.multisensory_variations): one stacked network must behave exactly as the same
EIRateRNN trained with song_update."""

import copy

import numpy as np
import pytest
import torch

from utils.models.ei_rate import (
    EIRateRNN,
    masked_squared_error,
    song_update,
    vanishing_gradient_regulariser,
)
from utils.models.ei_stack import StackedEIRateRNN, stacked_song_update
from utils.tasks.multisensory import input_mask, multisensory_trials, sample_batch
from utils.tasks.multisensory_variations import (
    CUED_CHANNELS,
    cued_input_mask,
    cued_trials,
    sample_cued_batch,
    stacked_choices,
    stacked_reports,
)


def _nets(sigma_rec=0.0, n=40):
    """Three different networks: the default, an E/I 50/50 with another input split, and one
    with the seven channels."""
    return [EIRateRNN(5, n, 2, input_mask=input_mask(n), seed=1, sigma_rec=sigma_rec),
            EIRateRNN(5, n, 2, e_frac=0.5, input_mask=input_mask(n, 0.5, visual=0.6, auditory=0.3),
                      seed=2, sigma_rec=sigma_rec),
            EIRateRNN(7, n, 2, input_mask=cued_input_mask(n), seed=3, sigma_rec=sigma_rec)]


def _split(batch, k):
    T, n = batch.inputs.shape[:2]
    return (batch.inputs.reshape(T, k, n // k, -1), batch.targets.reshape(T, k, n // k, -1),
            batch.mask.reshape(T, k, n // k, -1))


def test_forward_outputs_and_gradients_match_each_unstacked_network():
    nets = _nets()
    stack = StackedEIRateRNN(nets)
    batch = sample_cued_batch(3 * 6, generator=torch.Generator().manual_seed(0))
    u, y, m = _split(batch, 3)
    out, rates = stack(u, lambda_omega=2.0)
    assert out.shape == (u.shape[0], 3, 6, 2) and rates.shape == (u.shape[0], 3, 6, 40)
    per_net = ((out - y) ** 2 * m).sum(dim=(0, 2, 3)) / m.sum(dim=(0, 2, 3))
    per_net.sum().backward()
    omega = stack.last_omega()
    for k, net in enumerate(nets):
        o, r = net(u[:, k, :, :net.n_input])
        torch.testing.assert_close(o, out[:, k].detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(r, rates[:, k].detach(), rtol=1e-4, atol=1e-5)
        masked_squared_error(o, y[:, k], m[:, k]).backward()
        om = vanishing_gradient_regulariser(net, 2.0)
        assert float(omega[k]) == pytest.approx(om, rel=1e-4)
        for name in ("w_in", "w_rec", "w_out", "x0"):
            ref = getattr(net, name).grad
            got = getattr(stack, name).grad[k]
            if name == "w_in":
                assert torch.all(got[:, net.n_input:] == 0)     # padded channels get nothing
                got = got[:, :net.n_input]
            torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-7)


def test_regulariser_changes_the_recurrent_gradient_only():
    stack = StackedEIRateRNN(_nets())
    batch = sample_cued_batch(3 * 4, generator=torch.Generator().manual_seed(1))
    u, y, m = _split(batch, 3)
    grads = []
    for lam in (0.0, 2.0):
        stack.zero_grad()
        out, _ = stack(u, lambda_omega=lam)
        (((out - y) ** 2 * m).sum()).backward()
        grads.append({n: p.grad.clone() for n, p in stack.named_parameters()})
    assert not torch.allclose(grads[0]["w_rec"], grads[1]["w_rec"])
    for name in ("w_in", "w_out", "x0"):
        torch.testing.assert_close(grads[0][name], grads[1][name])


def test_stacked_update_equals_song_update_with_adam_and_clipping():
    nets = _nets(sigma_rec=0.0)
    ref = copy.deepcopy(nets)
    stack = StackedEIRateRNN(nets)
    opt = torch.optim.Adam(stack.parameters(), lr=1e-3)
    update = stacked_song_update(opt, clip_grad=0.05)       # small: clipping is active
    ref_updates = [song_update(torch.optim.Adam(n.parameters(), lr=1e-3), clip_grad=0.05)
                   for n in ref]
    gen = torch.Generator().manual_seed(2)
    for step in range(3):
        batch = sample_cued_batch(3 * 5, generator=gen)
        loss, metrics = update(stack, batch, step)
        assert np.isfinite(loss) and metrics["omega"] >= 0
        u, y, m = _split(batch, 3)
        for k, (net, upd) in enumerate(zip(ref, ref_updates)):
            sub = copy.copy(batch)
            sub.inputs, sub.targets, sub.mask = u[:, k, :, :net.n_input], y[:, k], m[:, k]
            upd(net, sub, step)
    for k, net in enumerate(ref):
        back = stack.network(k)
        for name in ("w_in", "w_rec", "w_out", "x0"):
            torch.testing.assert_close(getattr(back, name), getattr(net, name),
                                       rtol=1e-4, atol=1e-6)


def test_network_round_trip_and_dale_check_can_fail():
    nets = _nets()
    stack = StackedEIRateRNN(nets)
    for k, net in enumerate(nets):
        back = stack.network(k)
        assert back.n_input == net.n_input and back.n_exc == net.n_exc
        torch.testing.assert_close(back.recurrent_weights(), net.recurrent_weights())
        torch.testing.assert_close(back.input_weights(), net.input_weights())
    assert stack.dale_violations() == [0, 0, 0]
    stack.signs[1, 3] = -1.0                                 # an excitatory unit made inhibitory
    assert stack.dale_violations()[1] > 0 and stack.dale_violations()[0] == 0


def test_arguments_are_checked():
    nets = _nets()
    with pytest.raises(ValueError, match="at least one"):
        StackedEIRateRNN([])
    with pytest.raises(TypeError, match="networks"):
        StackedEIRateRNN([nets[0], "net"])
    with pytest.raises(ValueError, match="n_units"):
        StackedEIRateRNN([nets[0], EIRateRNN(5, 30, 2, seed=0)])
    stack = StackedEIRateRNN(nets)
    with pytest.raises(ValueError, match="shape"):
        stack(torch.zeros(5, 3, 2, 5))                       # 5 channels, the stack has 7
    with pytest.raises(ValueError, match="networks"):
        stack(torch.zeros(5, 2, 2, 7))
    with pytest.raises(ValueError, match="lambda_omega"):
        stack(torch.zeros(5, 2, 7), lambda_omega=-1.0)
    with pytest.raises(ValueError, match="backward"):
        stack.last_omega()
    with pytest.raises(ValueError, match="k"):
        stack.network(3)
    update = stacked_song_update(torch.optim.Adam(stack.parameters()))
    with pytest.raises(ValueError, match="split evenly"):
        update(stack, sample_cued_batch(10, generator=torch.Generator().manual_seed(0)), 0)
    with pytest.raises(TypeError, match="optimizer"):
        stacked_song_update("adam")


def test_cued_trials_cue_the_modalities_only_during_the_stimulus():
    b = cued_trials(["v", "a", "va", "catch"], [10.0, 11.0, 15.0, np.nan], baseline=0.0,
                    sigma_in=0.0, fixation=100.0)
    assert b.inputs.shape[-1] == len(CUED_CHANNELS) == 7
    plain = multisensory_trials(["v", "a", "va", "catch"], [10.0, 11.0, 15.0, np.nan],
                                baseline=0.0, sigma_in=0.0)
    torch.testing.assert_close(b.inputs[..., :5], plain.inputs)
    stim = slice(5, 55)
    expected = {0: (1, 0), 1: (0, 1), 2: (1, 1), 3: (0, 0)}
    for trial, (vis, aud) in expected.items():
        assert torch.all(b.inputs[stim, trial, 5] == vis) and torch.all(b.inputs[stim, trial, 6] == aud)
        assert torch.all(b.inputs[:5, trial, 5:] == 0) and torch.all(b.inputs[55:, trial, 5:] == 0)


def test_cued_input_mask_routes_each_cue_with_its_modality():
    mask = cued_input_mask(150, visual=0.6, auditory=0.3)
    assert mask.shape == (150, 7)
    torch.testing.assert_close(mask[:, 5], mask[:, 0])
    torch.testing.assert_close(mask[:, 6], mask[:, 1])
    assert int(mask[:, 0].sum()) == 72 + 18 and int(mask[:, 1].sum()) == 36 + 9
    assert torch.all(mask[:, 4] == 0)
    b = sample_cued_batch(200, generator=torch.Generator().manual_seed(4))
    assert 0.1 < b.catch.mean() < 0.3
    with pytest.raises(TypeError, match="generator"):
        sample_cued_batch(5, generator=None)


def test_stacked_choices_match_each_network_alone():
    nets = _nets()
    stack = StackedEIRateRNN(nets)
    batch = cued_trials(["v", "a", "va"] * 4, np.repeat([9.0, 12.0, 13.0, 16.0], 3),
                        generator=torch.Generator().manual_seed(5))
    chosen = stacked_choices(stack, batch, chunk=5)
    assert chosen.shape == (3, 12)
    for k, net in enumerate(nets):
        with torch.no_grad():
            out, _ = net(batch.inputs[..., :net.n_input])
        last = out[batch.end, torch.arange(12)].argmax(-1).numpy()
        np.testing.assert_array_equal(chosen[k], last)
    reports = stacked_reports(stack, batch)
    assert len(reports) == 3 and set(reports[0]["accuracy"]) == {"v", "a", "va"}
    with pytest.raises(ValueError, match="channels"):
        stacked_choices(stack, sample_batch(3, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(TypeError, match="StackedEIRateRNN"):
        stacked_choices(nets[0], batch)
