"""Tests of utils.models.ei_rate (chapter 7: the E/I network of Song, Yang & Wang 2016)."""

import math

import pytest
import torch

from utils.models.ei_rate import (EIRateRNN, balanced_structure, gamma_balanced_weights,
                                  masked_squared_error, song_update,
                                  vanishing_gradient_regulariser)
from utils.models.ei_rate import _standard_gamma
from utils.models import RecurrentModel, check_model_interface


def test_balanced_structure_rows_balance_and_have_unit_norm():
    c = balanced_structure(10, 0.8)
    assert torch.all(torch.diagonal(c) == 0)
    assert torch.allclose(c.norm(dim=1), torch.ones(10))
    assert torch.allclose(c[:, :8].sum(1), c[:, 8:].sum(1))
    assert c[0, 8] > c[0, 1] > 0          # fewer inhibitory inputs, each stronger


def test_standard_gamma_moments():
    g = torch.Generator().manual_seed(0)
    for k in (0.5, 2.0, 5.0):
        x = _standard_gamma(k, (200, 200), g)
        assert abs(x.mean().item() - k) < 0.03 * k + 0.01
        assert abs(x.var().item() - k) < 0.08 * k
        assert torch.all(x > 0)


def test_gamma_balanced_weights_radius_sign_and_seed():
    w = gamma_balanced_weights(150, 0.8, rho=1.5, k=2, seed=3)
    assert torch.all(w >= 0) and torch.all(torch.diagonal(w) == 0)
    signs = torch.ones(150)
    signs[120:] = -1
    radius = torch.linalg.eigvals(w.double() * signs.double()[None, :]).abs().max().item()
    assert radius == pytest.approx(1.5, rel=1e-4)
    assert torch.equal(w, gamma_balanced_weights(150, 0.8, rho=1.5, k=2, seed=3))
    assert not torch.equal(w, gamma_balanced_weights(150, 0.8, rho=1.5, k=2, seed=4))
    # mean balance: excitatory and inhibitory input sums agree on average over units
    exc, inh = w[:, :120].sum(1), w[:, 120:].sum(1)
    assert abs(exc.mean() - inh.mean()) < 0.05 * exc.mean()
    with pytest.raises(ValueError, match="rho"):
        gamma_balanced_weights(10, rho=0.0)


def _model(**kw):
    torch.manual_seed(0)
    mask = torch.zeros(20, 5)
    mask[:8, [0, 2]] = 1
    mask[8:16, [1, 3]] = 1
    return EIRateRNN(5, 20, 2, input_mask=mask, seed=1, **kw)


def test_interface_shapes_and_arguments():
    m = _model()
    assert (m.n_input, m.n_units, m.n_output, m.tau, m.dt, m.n_exc) == (5, 20, 2, 100.0, 20.0, 16)
    out, states = m(torch.rand(7, 3, 5))
    assert out.shape == (7, 3, 2) and states.shape == (7, 3, 20)
    assert m.recurrent_weights().shape == (20, 20)
    check_model_interface(m)
    assert isinstance(m, RecurrentModel)
    with pytest.raises(ValueError, match="u must"):
        m(torch.rand(7, 3, 4))
    with pytest.raises(ValueError, match="dt"):
        EIRateRNN(5, 20, 2, dt=200.0)
    with pytest.raises(ValueError, match="input_mask"):
        EIRateRNN(5, 20, 2, input_mask=torch.full((20, 5), 0.5))


def test_forward_matches_plain_euler_loop():
    m = _model(sigma_rec=0.0)
    u = torch.rand(9, 4, 5)
    out, rates = m(u)
    a = m.alpha
    x = m.x0.detach().expand(4, 20)
    w_in, w, w_out = m.input_weights(), m.recurrent_weights(), m.output_weights()
    for t in range(9):
        x = (1 - a) * x + a * (torch.relu(x) @ w.t() + u[t] @ w_in.t())
        assert torch.allclose(rates[t], torch.relu(x), atol=1e-6)
        assert torch.allclose(out[t], torch.relu(x) @ w_out.t(), atol=1e-6)


def test_dale_law_holds_even_for_negative_raw_weights_and_check_can_fail():
    m = _model()
    with torch.no_grad():
        m.w_rec.normal_()
        m.w_in.normal_()
        m.w_out.normal_()
    w = m.recurrent_weights()
    assert torch.all(w[:, :16] >= 0) and torch.all(w[:, 16:] <= 0)
    assert torch.all(torch.diagonal(w) == 0)
    assert torch.all(m.output_weights()[:, 16:] == 0)
    assert torch.all(m.input_weights()[:, 4] == 0)        # the start channel reaches no unit
    assert m.dale_violations() == 0
    m.signs[0] = -1.0   # an excitatory unit whose column is now negative: must be caught
    with torch.no_grad():
        m.w_rec[1, 0] = 1.0
    assert m.dale_violations() > 0


def test_noise_scale():
    m = _model(sigma_rec=0.15)
    with torch.no_grad():
        m.w_rec.zero_()
        m.w_in.zero_()
        m.x0.fill_(10.0)    # stays positive: rates are the linear leaky trace
    _, r = m(torch.zeros(2, 4000, 5))
    step = r[1] - (1 - m.alpha) * r[0]
    assert step.std().item() == pytest.approx(math.sqrt(2 * 0.2) * 0.15, rel=0.03)


def _explicit_omega(m, u, target, mask):
    """Omega from explicit Jacobians of an autograd Euler loop (the reference)."""
    a = m.alpha
    w_in, w = m.input_weights(), m.recurrent_weights()
    xs = [m.x0.expand(u.shape[1], m.n_units)]
    for t in range(u.shape[0]):
        xs.append((1 - a) * xs[-1] + a * (torch.relu(xs[-1]) @ w.t() + u[t] @ w_in.t()))
    x = torch.stack(xs[1:])
    out = torch.relu(x) @ m.output_weights().t()
    loss = masked_squared_error(out, target, mask)
    g = torch.autograd.grad(loss, xs[1:])
    wd = m.recurrent_weights()
    total, count = 0.0, 0.0
    for t in range(len(g)):
        act = (xs[t] > 0).float()
        back = (1 - a) * g[t] + a * (g[t] @ wd) * act
        num, den = back.pow(2).sum(-1), g[t].pow(2).sum(-1)
        ok = den >= 1e-20
        total = total + torch.where(ok, (num / den.clamp_min(1e-20) - 1) ** 2, 0 * num).mean()
        count += ok.float().mean()
    return loss, total / count


def test_vanishing_gradient_regulariser_value_and_gradient():
    m = _model(sigma_rec=0.0)
    u = torch.rand(6, 3, 5)
    target = torch.rand(6, 3, 2)
    mask = torch.ones(6, 3, 2)
    mask[:2] = 0
    mask[4:, 0] = 0        # trial 0 ends early (padding): its last g_t are exactly zero
    out, _ = m(u)
    masked_squared_error(out, target, mask).backward()
    grad_loss = m.w_rec.grad.clone()
    omega = vanishing_gradient_regulariser(m, lambda_omega=2.0)
    _, ref = _explicit_omega(m, u, target, mask)
    assert omega == pytest.approx(ref.item(), rel=1e-4)
    # the immediate derivative: g_t held fixed, only the Jacobian's W_rec varies
    added = (m.w_rec.grad - grad_loss) / 2.0
    assert added.abs().sum() > 0
    with pytest.raises(ValueError, match="backward"):
        vanishing_gradient_regulariser(m)      # the recording is used up


def test_regulariser_gradient_matches_finite_difference_with_fixed_g():
    m = _model(sigma_rec=0.0)
    u = torch.rand(5, 2, 5)
    target, mask = torch.rand(5, 2, 2), torch.ones(5, 2, 2)
    out, _ = m(u)
    masked_squared_error(out, target, mask).backward()
    drive, rates = m._recorded
    g = drive.grad.detach().clone()
    r_prev = torch.cat([torch.relu(m.x0.detach()).expand(2, 20)[None], rates[:-1].detach()])
    act = (r_prev > 0).float()
    before = m.w_rec.grad.clone()
    vanishing_gradient_regulariser(m, lambda_omega=1.0)
    added = m.w_rec.grad - before

    gd, ad = g.double(), act.double()

    def omega_of(w_rec):
        w = torch.relu(w_rec) * m.rec_mask.double() * m.signs.double()[None, :]
        back = (1 - m.alpha) * gd + m.alpha * (gd @ w) * ad
        ratio = back.pow(2).sum(-1) / gd.pow(2).sum(-1)
        return ((ratio - 1) ** 2).mean(1).sum() / g.shape[0]

    w0 = m.w_rec.detach().clone()
    i, j = 3, 17                         # an inhibitory, positive (active) weight
    assert w0[i, j] > 0
    eps = 1e-3
    wp, wm = w0.clone(), w0.clone()
    wp[i, j] += eps
    wm[i, j] -= eps
    fd = (omega_of(wp.double()) - omega_of(wm.double())) / (2 * eps)
    assert added[i, j].item() == pytest.approx(fd.item(), rel=1e-2, abs=1e-6)


def test_song_update_trains_and_clips():
    m = _model()
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    update = song_update(opt, lambda_omega=2.0, clip_grad=1.0)

    class B:
        inputs = torch.rand(8, 4, 5)
        targets = torch.full((8, 4, 2), 0.2)
        mask = torch.ones(8, 4, 2)

    before = [p.detach().clone() for p in m.parameters()]
    loss, metrics = update(m, B, 0)
    assert loss > 0 and "omega" in metrics
    change = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(m.parameters(), before)))
    assert 0 < change.item() <= 0.01 * 1.0 + 1e-6      # lr * clipped norm
    with pytest.raises(TypeError, match="optimizer"):
        song_update("sgd")


def test_masked_squared_error():
    out = torch.tensor([[[1.0, 0.0]]])
    tgt = torch.tensor([[[0.0, 0.0]]])
    assert masked_squared_error(out, tgt, torch.tensor([[[1.0, 1.0]]])).item() == 0.5
    assert masked_squared_error(out, tgt, torch.tensor([[[0.0, 1.0]]])).item() == 0.0
    with pytest.raises(ValueError, match="shapes"):
        masked_squared_error(out, tgt, torch.ones(2))
