"""Chapter 9: RateRNNEnsemble runs S independent RateRNNs in one pass; add_head (continual learning)."""

import pytest
import torch

from utils.learning.continual import add_head, fisher_diagonal
from utils.models import RateRNN
from utils.models.ensemble import EnsembleRNNFunction, RateRNNEnsemble
from utils.tasks.sequences import continual_batch, pulse_sequence_batch, sequence_loss
from utils.training import train


def _members(readout="nonnegative", n=3, **kw):
    nets = []
    for s in range(n):
        torch.manual_seed(s)
        nets.append(RateRNN(1, 12, 3, tau=100.0, dt=20.0, dale=True, readout=readout, **kw))
    return nets


@pytest.mark.parametrize("readout", ["nonnegative", "identity", "linear"])
def test_ensemble_equals_members_outputs_and_gradients(readout):
    nets = _members(readout)
    ens = RateRNNEnsemble(nets)
    b = pulse_sequence_batch(6, n_outputs=3, n_steps=30, generator=torch.Generator().manual_seed(0))
    out, rates = ens(b.inputs)
    assert out.shape == (30, 6, 3) and rates.shape == (30, 6, 12)
    ref = [net(b.inputs[:, 2 * k:2 * k + 2]) for k, net in enumerate(nets)]
    torch.testing.assert_close(out, torch.cat([r[0] for r in ref], 1))
    torch.testing.assert_close(rates, torch.cat([r[1] for r in ref], 1))
    # the ensemble's mean loss is the mean of the members' mean losses: gradients are 1/S of each
    (3 * sequence_loss(ens, b)[0]).backward()
    for k, net in enumerate(nets):
        sequence_loss(net, b.select(torch.arange(2 * k, 2 * k + 2)))[0].backward()
        torch.testing.assert_close(ens.weight.grad[k], net.weight.grad, atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(ens.input_weight.grad[k], net.input_layer.weight.grad,
                                   atol=1e-6, rtol=1e-4)
        if readout != "identity":
            torch.testing.assert_close(ens.readout_weight.grad[k], net.readout.weight.grad,
                                       atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(ens.member(k)(b.inputs)[0], net(b.inputs)[0])


def test_ensemble_function_gradcheck():
    torch.manual_seed(1)
    drive = (0.3 * torch.randn(5, 2, 3, 4, dtype=torch.float64)).requires_grad_()
    weight = (0.5 * torch.randn(2, 4, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda d, w: EnsembleRNNFunction.apply(d, w, 0.2), (drive, weight))


def test_ensemble_trains_members_independently_and_validates():
    nets = _members()
    ens = RateRNNEnsemble(nets)
    before = ens.weight.detach().clone()
    gen = torch.Generator().manual_seed(2)
    hist = train(ens, lambda: pulse_sequence_batch(6, n_outputs=3, n_steps=30, generator=gen), 5,
                 loss_fn=sequence_loss, lr=0.01, progress=False)
    assert len(hist) == 5 and not torch.equal(before, ens.weight)
    assert (ens.weight >= 0).all() and (ens.readout_weight >= 0).all()     # constrain_ ran
    assert torch.equal(ens.recurrent_weights()[1], ens.member(1).recurrent_weights())
    with pytest.raises(ValueError, match="divisible"):
        ens(torch.zeros(30, 4, 1))
    with pytest.raises(ValueError, match="differs"):
        RateRNNEnsemble([nets[0], RateRNN(1, 12, 3, dale=False)])
    with pytest.raises(TypeError, match="members"):
        RateRNNEnsemble([])
    # per-member gradient clipping: each member's norm at most max_norm, small ones untouched
    for p in ens.parameters():
        p.grad = torch.ones_like(p)
    ens.readout_weight.grad[2] = 0.0
    ens.clip_grad_(1.0)
    norms = torch.stack([p.grad.reshape(3, -1).pow(2).sum(1) for p in ens.parameters()]).sum(0).sqrt()
    assert torch.allclose(norms, torch.ones(3), atol=1e-4)
    # stacking per-member Fisher dicts
    b = pulse_sequence_batch(2, n_outputs=3, n_steps=30, generator=torch.Generator().manual_seed(4))
    fishers = [fisher_diagonal(ens.member(k), b.inputs, b.targets) for k in range(3)]
    stacked = ens.stack_members(fishers)
    assert set(stacked) == {n for n, _ in ens.named_parameters()}
    torch.testing.assert_close(stacked["weight"][2], fishers[2]["weight"])
    with pytest.raises(ValueError, match="3 dicts"):
        ens.stack_members(fishers[:2])


def test_add_head_keeps_old_readout_and_adds_new():
    torch.manual_seed(0)
    net = RateRNN(1, 12, 3, dale=True, readout="nonnegative")
    torch.manual_seed(5)
    two = add_head(net)
    assert two.n_output == 6 and two.readout.weight.shape == (6, net.n_exc)
    assert (two.readout.weight >= 0).all()
    b = continual_batch(4, "A", n_outputs=3, n_steps=30, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(two(b.inputs)[0][..., :3], net(b.inputs)[0])
    assert not torch.allclose(two(b.inputs)[0][..., 3:], net(b.inputs)[0])
    # task B (labels 1) trains the new head only: the old head's readout gets no gradient
    bb = continual_batch(4, "B", n_outputs=3, n_steps=30, generator=torch.Generator().manual_seed(2))
    sequence_loss(two, bb, heads=3)[0].backward()
    assert two.readout.weight.grad[:3].abs().max() == 0 and two.readout.weight.grad[3:].abs().max() > 0
    with pytest.raises(ValueError, match="n_new"):
        add_head(net, 0)
    with pytest.raises(ValueError, match="identity"):
        add_head(RateRNN(1, 12, 3, dale=True, readout="identity"))
