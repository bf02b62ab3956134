"""Chapter 9: sequence tasks, the RateRNN readout/dropout options, EWC and the peak-shift analysis."""

import pytest
import torch

from utils.analysis.peak_shifts import (column_sweep, linear_response, peak_shift, peak_times,
                                        predicted_shift, run_with_weights, scale_column)
from utils.learning.continual import (ewc_penalty, fisher_diagonal, free_gradient_fraction,
                                      snapshot, with_ewc)
from utils.models import RateRNN
from utils.tasks.sequences import (SequenceBatch, bump_targets, continual_batch, head_outputs,
                                   pulse_sequence_batch, r2_score, sequence_loss)
from utils.training import train


def test_pulse_sequence_batch_shapes_and_order():
    b = pulse_sequence_batch(8, generator=torch.Generator().manual_seed(0))
    assert b.inputs.shape == (60, 8, 1) and b.targets.shape == (60, 8, 10)
    peaks = b.targets.argmax(0)                      # (batch, outputs)
    assert torch.all(peaks[:, 1:] > peaks[:, :-1])   # outputs peak one after another
    # the input jumps at the onset and decays afterwards
    for i in range(8):
        on = int(b.onsets[i])
        assert b.inputs[on - 1, i, 0] == 0 and b.inputs[on, i, 0] == pytest.approx(1.0)
        assert b.inputs[on + 5, i, 0] < b.inputs[on + 1, i, 0]
    # peaks keep their distance from the onset whatever the onset
    assert torch.all((peaks - b.onsets[:, None]).float().std(0) == 0)


def test_multi_sequence_magnitude_selects_group():
    b = pulse_sequence_batch(16, n_sequences=4, n_outputs=5, generator=torch.Generator().manual_seed(1))
    assert b.targets.shape == (60, 16, 20)
    for i in range(16):
        k = int(b.labels[i])
        assert b.inputs[:, i, 0].max() == pytest.approx((k + 1) / 4)
        energy = b.targets[:, i].pow(2).sum(0).reshape(4, 5).sum(1)
        assert energy.argmax() == k and energy.sum() == pytest.approx(energy[k].item())


def test_continual_tasks_reverse_order_and_context():
    a = continual_batch(4, "A", context=True, generator=torch.Generator().manual_seed(2))
    b = continual_batch(4, "B", context=True, generator=torch.Generator().manual_seed(2))
    assert a.inputs.shape == (60, 4, 3)
    assert torch.all(a.inputs[:, :, 1] == 1) and torch.all(b.inputs[:, :, 2] == 1)
    pa, pb = a.targets.argmax(0), b.targets.argmax(0)
    assert torch.all(pa[:, 1:] > pa[:, :-1]) and torch.all(pb[:, 1:] < pb[:, :-1])
    assert torch.equal(pa, pb.flip(1))               # same onsets: B is A reversed
    # A's envelope decays, B's grows
    i, on = 0, int(a.onsets[0])
    assert a.inputs[on, i, 0].abs() > a.inputs[on + 25, i, 0].abs()
    with pytest.raises(ValueError, match="task"):
        continual_batch(2, "C")


def test_bump_targets_and_r2():
    y = bump_targets(torch.tensor([0, 5]), 50, 20.0, 3, first_peak=100, spacing=100, width=30)
    assert y.argmax(0).tolist() == [[5, 10, 15], [10, 15, 20]]
    assert r2_score(y, y) == 1.0
    assert r2_score(y.mean((0, 1), keepdim=True).expand_as(y), y) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        r2_score(y, y[:, :1])


def test_head_outputs_and_sequence_loss():
    out = torch.randn(5, 3, 20)
    h = head_outputs(out, torch.tensor([1, 0, 1]), 10)
    assert torch.equal(h[:, 0], out[:, 0, 10:]) and torch.equal(h[:, 1], out[:, 1, :10])
    with pytest.raises(ValueError):
        head_outputs(out, torch.tensor([2, 0, 1]), 10)
    net = RateRNN(1, 20, 20, dale=True)
    batch = SequenceBatch.concat([continual_batch(2, "A"), continual_batch(2, "B")])
    loss, metrics = sequence_loss(net, batch, heads=10)
    assert loss.dim() == 0 and "r2" in metrics


def test_readout_modes_and_dropout():
    torch.manual_seed(0)
    u = torch.randn(20, 3, 2)
    ident = RateRNN(2, 30, 5, dale=True, readout="identity").eval()
    y, r = ident(u)
    assert torch.equal(y, r[..., :5])                 # output k is unit k
    assert sum(p.numel() for n, p in ident.named_parameters() if "readout" in n) == 0
    with pytest.raises(ValueError, match="identity"):
        RateRNN(2, 10, 9, dale=True, readout="identity")
    with pytest.raises(ValueError, match="readout"):
        RateRNN(2, 10, 3, readout="positive")
    nonneg = RateRNN(2, 30, 5, dale=True, readout="nonnegative")
    assert torch.all(nonneg.readout_matrix() >= 0)
    with torch.no_grad():
        nonneg.readout.weight[0, 0] = -1.0
    assert nonneg.readout_matrix()[0, 0] == 0         # rectified in the forward pass
    nonneg.constrain_()
    assert nonneg.readout.weight.min() >= 0           # and clipped by the projection step
    drop = RateRNN(2, 30, 5, dale=True, dropout=0.5)
    drop.train()
    torch.manual_seed(1)
    _, r1 = drop(u)
    _, r2 = drop(u)
    assert not torch.equal(r1, r2)                    # a new mask per forward pass
    drop.eval()
    assert torch.equal(drop(u)[0], drop(u)[0])        # off in eval mode
    with pytest.raises(ValueError, match="dropout"):
        RateRNN(2, 10, 3, dropout=1.0)


def test_fisher_is_mean_of_squared_per_trial_gradients():
    torch.manual_seed(0)
    net = RateRNN(1, 12, 3, dale=True, readout="nonnegative")
    b = pulse_sequence_batch(5, n_outputs=3, n_steps=40, generator=torch.Generator().manual_seed(3))
    fisher = fisher_diagonal(net, b.inputs, b.targets)
    assert set(fisher) == {n for n, _ in net.named_parameters()}
    # slow reference: the squared gradient of each trial's loss, averaged
    ref = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for i in range(5):
        net.zero_grad()
        out, _ = net(b.inputs[:, i:i + 1])
        (0.5 * (out - b.targets[:, i:i + 1]).pow(2).sum()).backward()
        for n, p in net.named_parameters():
            ref[n] += p.grad ** 2 / 5
    for n in ref:
        torch.testing.assert_close(fisher[n], ref[n])
    # differs from the squared batch gradient (which lets trials cancel)
    net.zero_grad()
    out, _ = net(b.inputs)
    (0.5 * (out - b.targets).pow(2).sum() / 5).backward()
    assert not torch.allclose(net.weight.grad ** 2, fisher["weight"])
    with pytest.raises(ValueError, match="targets"):
        fisher_diagonal(net, b.inputs, b.targets[:, :2])


def test_ewc_penalty_value_gradient_and_errors():
    p = {"a": torch.tensor([1.0, 2.0], requires_grad=True), "b": torch.tensor([[3.0]], requires_grad=True)}
    anchor = {"a": torch.tensor([0.0, 2.0]), "b": torch.tensor([[1.0]])}
    fisher = {"a": torch.tensor([2.0, 5.0]), "b": torch.tensor([[0.5]])}
    pen = ewc_penalty(p, anchor, fisher, 10.0)
    assert pen.item() == pytest.approx(0.5 * 10 * (2 * 1 + 0 + 0.5 * 4))
    pen.backward()
    torch.testing.assert_close(p["a"].grad, torch.tensor([20.0, 0.0]))
    assert ewc_penalty(p, anchor, fisher, 0.0).item() == 0
    with pytest.raises(ValueError, match="missing"):
        ewc_penalty({"a": p["a"]}, anchor, fisher, 1.0)
    with pytest.raises(ValueError, match="lam"):
        ewc_penalty(p, anchor, fisher, -1.0)


def test_ewc_keeps_important_parameters_during_training():
    torch.manual_seed(0)
    net = RateRNN(1, 16, 3, dale=True, readout="nonnegative")
    gen = torch.Generator().manual_seed(0)
    batch_fn = lambda: pulse_sequence_batch(8, n_outputs=3, n_steps=30, generator=gen)
    anchors = snapshot(net)
    fisher = {n: torch.ones_like(a) for n, a in anchors.items()}
    train(net, batch_fn, 20, loss_fn=with_ewc(sequence_loss, anchors, fisher, 1e6), lr=1e-2,
          progress=False)
    moved_ewc = sum((p - anchors[n]).abs().sum().item() for n, p in net.named_parameters())
    torch.manual_seed(0)
    free = RateRNN(1, 16, 3, dale=True, readout="nonnegative")
    hist = train(free, batch_fn, 20, loss_fn=sequence_loss, lr=1e-2, progress=False)
    moved_free = sum((p - anchors[n]).abs().sum().item() for n, p in free.named_parameters())
    assert moved_ewc < 0.2 * moved_free and "r2" in hist


def test_free_gradient_fraction():
    fisher = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0])}
    grads = {"a": torch.tensor([1.0, 1.0]), "b": torch.tensor([2.0]), "c": torch.tensor([1.0])}
    assert free_gradient_fraction(grads, fisher) == pytest.approx(6 / 7)


def test_peak_times_subsample_and_shift_sign():
    t = torch.arange(40.0)
    y = torch.exp(-0.5 * ((t[:, None] - torch.tensor([10.3, 20.0, 29.6])) / 3) ** 2)
    torch.testing.assert_close(peak_times(y, 20.0), torch.tensor([206.0, 400.0, 592.0], dtype=torch.float64),
                               atol=2.0, rtol=0)
    assert peak_times(y, 20.0, interpolate=False).tolist() == [200.0, 400.0, 600.0]
    later = torch.exp(-0.5 * ((t[:, None] - 21.0) / 3) ** 2)
    assert peak_shift(y[:, 1:2], later, 10.0).item() == pytest.approx(-10.0, abs=0.5)  # later = negative
    with pytest.raises(ValueError):
        peak_shift(y, later, 10.0)


def test_scale_column_and_sweep_and_linear_response():
    torch.manual_seed(0)
    net = RateRNN(1, 20, 4, dale=True, readout="nonnegative", rho=1.2).eval()
    w = net.recurrent_weights().detach()
    w2 = scale_column(w, 18, 2.0)
    assert torch.equal(w2[:, 18], 2 * w[:, 18]) and torch.equal(w2[:, :18], w[:, :18])
    with pytest.raises(ValueError, match="factor"):
        scale_column(w, 18, -1.0)
    u = pulse_sequence_batch(2, n_outputs=4, generator=torch.Generator().manual_seed(0)).inputs
    out, _ = run_with_weights(net, u)
    torch.testing.assert_close(out, net(u)[0])         # same as the model without noise
    shifts = column_sweep(net, u, [16, 18], [1.0, 1.5])
    assert shifts.shape == (2, 2, 2, 4) and torch.all(shifts[:, 0] == 0)
    # the linearised response matches a small finite perturbation
    dw = torch.zeros_like(w)
    dw[:, 18] = w[:, 18]
    y, dy = linear_response(net, u, dw)
    eps = 1e-3
    y_eps, _ = run_with_weights(net, u, w + eps * dw)
    torch.testing.assert_close((y_eps - y) / eps, dy, atol=2e-3, rtol=0.05)
    pred = predicted_shift(y, dy, net.dt, eps)
    assert pred.shape == (2, 4)


def test_silent_outputs_counts_outputs_that_never_rise():
    from utils.models import RateRNN
    from utils.tasks.sequences import pulse_sequence_batch, silent_outputs

    net = RateRNN(1, 20, 4, dale=True, readout="nonnegative")
    with torch.no_grad():
        net.readout.weight.zero_()
        net.readout.bias.copy_(torch.tensor([1.0, 0.0, 1.0, 0.0]))
    inputs = pulse_sequence_batch(6, generator=torch.Generator().manual_seed(0)).inputs
    assert silent_outputs(net, inputs) == 2
    assert silent_outputs(net, inputs, threshold=2.0) == 4
    with pytest.raises(ValueError, match="inputs must be"):
        silent_outputs(net, inputs[0])


def test_pulse_sequence_batch_pads_targets_to_n_channels():
    from utils.tasks.sequences import pulse_sequence_batch

    a = pulse_sequence_batch(5, n_sequences=2, n_outputs=5, generator=torch.Generator().manual_seed(3))
    b = pulse_sequence_batch(5, n_sequences=2, n_outputs=5, n_channels=40,
                             generator=torch.Generator().manual_seed(3))
    assert b.targets.shape[-1] == 40 and torch.equal(b.targets[..., :10], a.targets)
    assert not b.targets[..., 10:].any()
    with pytest.raises(ValueError, match="n_channels"):
        pulse_sequence_batch(5, n_sequences=2, n_outputs=5, n_channels=9)


def test_task_r2_scores_each_task_on_its_own_head():
    from utils.learning.continual import task_r2
    from utils.tasks.sequences import SequenceBatch

    class Echo(torch.nn.Module):  # outputs = the inputs: head 0 = channels 0-1, head 1 = 2-3
        def forward(self, u):
            return u, u

    u = torch.randn(7, 3, 4, generator=torch.Generator().manual_seed(0))
    lab = torch.zeros(3, dtype=torch.long)
    a = SequenceBatch(u, u[..., :2], lab, lab, 20.0)
    b = SequenceBatch(u, u[..., 2:] * 0.0 + 1.0, lab, lab, 20.0)
    ra, rb = task_r2(Echo(), [a, b], head_size=2)
    assert ra == pytest.approx(1.0) and rb < 0.5
    with pytest.raises(ValueError, match="head_size"):
        task_r2(Echo(), [a], head_size=0)
