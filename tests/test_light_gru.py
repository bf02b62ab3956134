"""Tests of utils.models.light_gru (chapter 4)."""

import pytest
import torch

from utils.models.light_gru import LightGRU, LightGRUFunction, light_gru, light_gru_step


def _plain_loop(drive, weight, h0):
    n = weight.shape[1]
    h, out = h0, []
    for t in range(drive.shape[0]):
        h = light_gru_step(h, drive[t, :, :n], drive[t, :, n:], weight[:n], weight[n:])
        out.append(h)
    return torch.stack(out)


def test_function_matches_plain_steps_and_gradcheck():
    torch.manual_seed(0)
    drive = torch.randn(7, 3, 8, dtype=torch.double, requires_grad=True)
    weight = (0.5 * torch.randn(8, 4, dtype=torch.double)).requires_grad_()
    h0 = torch.rand(3, 4, dtype=torch.double, requires_grad=True)
    torch.testing.assert_close(light_gru(drive, weight, h0), _plain_loop(drive, weight, h0))
    assert torch.autograd.gradcheck(LightGRUFunction.apply, (drive, weight, h0))


def test_gradients_match_autograd_loop_in_float32():
    torch.manual_seed(1)
    drive = torch.randn(20, 5, 16, requires_grad=True)
    weight = (0.3 * torch.randn(16, 8)).requires_grad_()
    h0 = torch.zeros(5, 8)
    g1 = torch.autograd.grad(light_gru(drive, weight, h0).square().sum(), (drive, weight))
    g2 = torch.autograd.grad(_plain_loop(drive, weight, h0).square().sum(), (drive, weight))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", [{}, {"n_branches": 3}, {"dale": "rectify"}, {"dale": "sign_flip"},
                                {"batch_norm": False, "n_branches": 2}])
def test_model_interface_shapes_and_nonnegative_states(kw):
    torch.manual_seed(0)
    model = LightGRU(5, 12, 3, **kw)
    out, states = model(torch.randn(9, 4, 5))
    assert out.shape == (9, 4, 3) and states.shape == (9, 4, 12)
    assert bool((states >= 0).all())
    assert model.recurrent_weights().shape == (12, 12)
    assert model.dt == 100.0 and model.tau is None


def test_dale_rectify_holds_after_training_and_sign_flip_breaks():
    torch.manual_seed(0)
    u = torch.randn(10, 8, 3)
    y = torch.randint(3, (10, 8))
    models = {m: LightGRU(3, 10, 3, dale=m, e_frac=0.7) for m in ("rectify", "sign_flip")}
    for m, model in models.items():
        assert model.dale_violations() == 0            # both start obeying Dale's law
        opt = torch.optim.Adam(model.parameters(), lr=0.2)
        for _ in range(30):
            out, _ = model(u)
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, 3), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.constrain_()
    w = models["rectify"].recurrent_weights()
    assert models["rectify"].dale_violations() == 0
    assert bool((w[:, :7] >= 0).all() and (w[:, 7:] <= 0).all())
    assert bool((torch.diagonal(w) == 0).all())
    assert models["sign_flip"].dale_violations() > 0   # the check can fail: the sign-flip mask does


def test_dendritic_mask_stays_exact():
    torch.manual_seed(0)
    model = LightGRU(4, 6, 2, n_branches=3)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(5):
        out, _ = model(torch.randn(6, 5, 4))
        opt.zero_grad()
        out.square().mean().backward()
        opt.step()
    soma = model.soma_matrix()
    assert bool((soma[model.block_mask == 0] == 0).all())
    assert bool((soma[model.block_mask == 1] != 0).all())


def test_batch_norm_running_statistics_in_eval():
    torch.manual_seed(0)
    model = LightGRU(3, 6, 2)
    u = torch.randn(5, 4, 3)
    model.train()
    a1, _ = model(u)
    a2, _ = model(u[:, :1])            # one trial: batch statistics change
    model.eval()
    b1, _ = model(u)
    b2, _ = model(u[:, :1])            # running statistics: the trial's output does not depend on the batch
    torch.testing.assert_close(b1[:, :1], b2)
    assert not torch.allclose(a1[:, :1], a2)


def test_initial_spectral_radius_and_bad_arguments():
    torch.manual_seed(0)
    model = LightGRU(3, 20, 2, dale="rectify", rho=1.5)
    radius = torch.linalg.eigvals(model.recurrent_weights().detach()).abs().max().item()
    assert radius == pytest.approx(1.5, rel=1e-4)
    with pytest.raises(ValueError, match="dale"):
        LightGRU(3, 8, 2, dale="yes")
    with pytest.raises(ValueError, match="tau"):
        LightGRU(3, 8, 2, tau=100.0)
    with pytest.raises(ValueError, match="u must"):
        model(torch.randn(5, 2, 4))
    with pytest.raises(ValueError, match="weight"):
        light_gru(torch.randn(3, 2, 8), torch.randn(4, 4))
    with pytest.raises(ValueError, match="drive"):
        light_gru(torch.randn(3, 2, 7), torch.randn(7, 3))


def test_lesion_removes_a_units_influence():
    torch.manual_seed(0)
    model = LightGRU(3, 6, 2, batch_norm=False)
    u = torch.randn(5, 2, 3)
    model.lesion_([2])
    out, states = model(u)
    states2 = states.clone()
    # perturbing unit 2's state cannot change the outputs any more
    w = model.recurrent_matrices()
    assert bool((w[:, 2] == 0).all()) and bool((model.readout.weight[:, 2] == 0).all())
    with pytest.raises(ValueError, match="units"):
        model.lesion_([6])


def test_follows_the_course_model_interface():
    from utils.models.base import check_model_interface
    for kw in ({}, {"n_branches": 2}, {"dale": "rectify"}):
        check_model_interface(LightGRU(3, 8, 2, **kw))
