import pytest
import torch

from utils.models import (DendriticInput, LeakyRNNFunction, LeakyTanhRNN, RateRNN, constrained_step,
                          leaky_rnn)


def test_leaky_rnn_backward_matches_gradcheck():
    torch.manual_seed(0)
    drive = torch.randn(6, 3, 5, dtype=torch.double, requires_grad=True)
    w = torch.randn(5, 5, dtype=torch.double, requires_grad=True)
    x0 = torch.randn(3, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d, ww, x: LeakyRNNFunction.apply(d, ww, x, 0.3), (drive, w, x0))


def test_leaky_rnn_matches_plain_loop():
    torch.manual_seed(1)
    drive = torch.randn(10, 4, 6)
    w = torch.randn(6, 6) * 0.3
    rates = leaky_rnn(drive, w, alpha=0.2)
    x = torch.zeros(4, 6)
    for t in range(10):
        x = 0.8 * x + 0.2 * torch.relu(x) @ w.t() + drive[t]
        assert torch.allclose(rates[t], torch.relu(x), atol=1e-6)


def test_constrained_step_matches_model_loop():
    torch.manual_seed(2)
    model = RateRNN(3, 12, 2, dale=True, sparsity=0.3)
    u = torch.randn(7, 5, 3)
    _, rates = model(u)
    drive = model.alpha * model.input_drive(u)
    x = torch.zeros(5, 12)
    for t in range(7):
        x = constrained_step(x, model.weight_scale * model.weight, model.signs, model.mask, drive[t], model.alpha)
    assert torch.allclose(torch.relu(x), rates[-1], atol=1e-5)


def test_dale_and_mask_exact_after_optimiser_steps():
    torch.manual_seed(3)
    model = RateRNN(3, 20, 3, dale=True, sparsity=0.3, sigma_rec=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.5)  # huge steps push parameters negative
    for _ in range(20):
        out, _ = model(torch.randn(15, 8, 3))
        loss = (out - 1.0).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.constrain_()
        assert model.constraint_violations() == 0
    w = model.recurrent_weights()
    assert torch.all(w[:, : model.n_exc] >= 0) and torch.all(w[:, model.n_exc:] <= 0)
    assert torch.all(w[model.mask == 0] == 0)
    assert torch.all(model.weight >= 0)


def test_readout_from_excitatory_units_only():
    model = RateRNN(3, 10, 2, dale=True, e_frac=0.8)
    assert model.readout.in_features == 8
    free = RateRNN(3, 10, 2)
    assert free.readout.in_features == 10


def test_noise_std_per_step():
    torch.manual_seed(4)
    model = RateRNN(1, 50, 1, sigma_rec=0.5, dt=20, tau=100)
    with torch.no_grad():
        model.weight.zero_()
        model.input_layer.weight.zero_()
        model.input_layer.bias.fill_(0.0)
        model.bias.fill_(0.0)
    # one step from x0 = 0: x_1 = noise with std sqrt(2 dt / tau) sigma
    _, rates = model(torch.zeros(1, 4000, 1))
    x1 = rates[0]
    expected = (2 * 0.2) ** 0.5 * 0.5
    # rates are rectified: E[relu(x)^2] = std^2 / 2
    assert abs((2 * x1.pow(2).mean()).sqrt().item() - expected) < 0.02


@pytest.mark.parametrize("kwargs, match", [
    (dict(dt=200.0, tau=100.0), "dt must satisfy"),
    (dict(e_frac=1.2, dale=True), "e_frac"),
    (dict(sparsity=-0.1), "sparsity"),
    (dict(sigma_rec=-1.0), "sigma_rec"),
    (dict(mask=torch.ones(3, 3)), r"mask must have shape \(10, 10\)"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RateRNN(3, 10, 2, **kwargs)


def test_bad_input_shape():
    model = RateRNN(3, 10, 2)
    with pytest.raises(ValueError, match=r"u must be a tensor of shape \(time, batch, 3\)"):
        model(torch.zeros(5, 2, 4))


def test_dendritic_input_mask_keeps_off_block_zero_and_rnn_runs():
    torch.manual_seed(5)
    layer = DendriticInput(3, 4, 2)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(3):
        layer(torch.randn(6, 2, 3)).sum().backward()
        opt.step()
    assert torch.all(layer.soma_matrix()[layer.block_mask == 0] == 0)
    model = RateRNN(3, 4, 2, n_branches=2)
    out, rates = model(torch.randn(6, 2, 3))
    assert out.shape == (6, 2, 2) and rates.shape == (6, 2, 4)


def test_clipped_synapse_still_receives_gradient():
    # projected gradient descent: a parameter clipped to exactly zero can grow back
    torch.manual_seed(6)
    model = RateRNN(2, 6, 1, dale=True)
    with torch.no_grad():
        model.weight[0, 1] = 0.0
    out, _ = model(torch.rand(10, 4, 2) + 0.5)
    out.sum().backward()
    assert model.weight.grad[0, 1] != 0
    assert model.recurrent_weights()[0, 1] == 0


def test_constraint_violations_fail_on_corrupted_networks():
    import copy

    torch.manual_seed(4)
    model = RateRNN(3, 20, 3, dale=True, sparsity=0.3)
    assert model.constraint_violations() == 0
    # parameters overwritten with numbers of both signs: the effective weights still obey Dale's
    # law (the forward pass rectifies), the stored parameters do not
    corrupted = copy.deepcopy(model)
    with torch.no_grad():
        corrupted.weight.copy_(torch.randn(20, 20) * 5)
    assert corrupted.constraint_violations() > 0
    # an optimiser step without the projection leaves negative parameters behind
    unprojected = copy.deepcopy(model)
    opt = torch.optim.Adam(unprojected.parameters(), lr=0.5)
    out, _ = unprojected(torch.randn(15, 8, 3))
    (out - 1.0).pow(2).mean().backward()
    opt.step()
    assert unprojected.constraint_violations() > 0
    unprojected.constrain_()
    assert unprojected.constraint_violations() == 0
    # a corrupted sign buffer gives effective weights of the wrong sign for their column
    flipped = copy.deepcopy(model)
    flipped.signs[0] = -1.0
    assert flipped.constraint_violations() > 0
    # a forward pass that forgot to rectify
    leaky = copy.deepcopy(model)
    with torch.no_grad():
        leaky.weight[0, 5] = -1.0
    leaky._effective = lambda w: w * leaky.mask * leaky.signs[None, :]
    assert leaky.constraint_violations() > 0


def test_constraint_violations_unconstrained_network_checks_the_mask():
    model = RateRNN(3, 10, 2, sparsity=0.5)
    assert model.constraint_violations() == 0
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert model.constraint_violations() == int((model.mask == 0).sum())


def test_count_constraint_violations_counts_each_entry_once():
    from utils.models.rate import count_constraint_violations

    signs = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    weight = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    effective = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    assert count_constraint_violations(weight, effective, signs, mask) == 0
    bad = torch.tensor([[0.5, -1.0], [-1.0, 0.0]])   # self-connection (outside the mask) + wrong sign
    assert count_constraint_violations(weight, bad, signs, mask) == 2
    with pytest.raises(ValueError):
        count_constraint_violations(weight, effective, torch.ones(3), mask)


def test_models_accept_float64_inputs_like_lowrank():
    u = torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(0))
    for model in (RateRNN(n_input=3, n_units=8, n_output=2), LeakyTanhRNN(3, 8, 2)):
        out32, _ = model(u)
        out64, _ = model(u.double())  # was: "mat1 and mat2 must have the same dtype"
        assert out64.dtype == torch.float32 and torch.equal(out32, out64)
