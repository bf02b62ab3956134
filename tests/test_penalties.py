"""Unit tests of utils.penalties: the three penalties, the penalised loss and clipping."""

import pytest
import torch

from utils.constraints import clipping
from utils.constraints import penalties as P
from utils.models import RateRNN
from utils.constraints.spatial import distance_matrix, grid_positions
from utils.tasks import TaskBatch


def _toy_batch(T=12, B=5, n_in=3, n_out=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand(T, B, n_in, generator=g)
    targets = torch.zeros(T, B, dtype=torch.long)
    decision = torch.zeros(T, B, dtype=torch.bool)
    decision[-3:] = True
    targets[-3:] = torch.randint(1, n_out, (B,), generator=g)
    valid = torch.ones(T, B, dtype=torch.bool)
    valid[-1, 0] = False
    return TaskBatch(inputs, targets, valid, decision, [{} for _ in range(B)])


def test_l1_matches_definition_and_gradient_is_sign():
    w = torch.tensor([[1.0, -2.0], [0.0, 3.0]], requires_grad=True)
    pen = P.l1_weight_penalty(w)
    assert pen.item() == pytest.approx(6.0)
    assert P.l1_weight_penalty(w, "mean").item() == pytest.approx(1.5)
    pen.backward()
    assert torch.equal(w.grad, torch.tensor([[1.0, -1.0], [0.0, 1.0]]))


def test_rate_penalty_sum_mean_and_padding():
    r = torch.arange(24, dtype=torch.float32).reshape(4, 2, 3)
    assert P.rate_penalty(r, "sum").item() == pytest.approx((r ** 2).sum().item() / 2)
    assert P.rate_penalty(r, "mean").item() == pytest.approx((r ** 2).mean().item())
    valid = torch.ones(4, 2, dtype=torch.bool)
    valid[3, 1] = False
    expect = (r[:3] ** 2).sum() + (r[3, 0] ** 2).sum()
    assert P.rate_penalty(r, "mean", valid).item() == pytest.approx(expect.item() / (7 * 3))


def test_wiring_penalty_with_and_without_communicability():
    w = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    d = torch.tensor([[0.0, 3.0], [3.0, 0.0]])
    assert P.wiring_penalty(w, d).item() == pytest.approx(9.0)
    c = torch.tensor([[1.0, 0.5], [2.0, 1.0]])
    assert P.wiring_penalty(w, d, c).item() == pytest.approx(2 * 3 * 0.5 + 1 * 3 * 2)
    wg = w.clone().requires_grad_(True)
    cg = c.clone().requires_grad_(True)
    P.wiring_penalty(wg, d, cg).backward()
    assert cg.grad is None  # communicability is a fixed weighting
    assert wg.grad[0, 1].item() == pytest.approx(1.5)


def test_argument_errors_name_the_argument():
    w = torch.ones(3, 3)
    with pytest.raises(ValueError, match="reduction"):
        P.l1_weight_penalty(w, "max")
    with pytest.raises(TypeError, match="weights"):
        P.l1_weight_penalty([[1.0]])
    with pytest.raises(ValueError, match="rates"):
        P.rate_penalty(torch.ones(3, 3))
    with pytest.raises(ValueError, match="distances"):
        P.wiring_penalty(w, torch.ones(2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        P.wiring_penalty(w, -torch.ones(3, 3))
    with pytest.raises(ValueError, match="max_norm"):
        clipping.clip_by_norm([w], 0.0)
    with pytest.raises(ValueError, match="rel_threshold"):
        P.near_zero_fraction(w, 1.5)


def test_penalised_loss_adds_each_term():
    torch.manual_seed(0)
    model = RateRNN(3, 8, 3)
    batch = _toy_batch()
    d = distance_matrix(grid_positions((2, 2, 2)))
    base, m0 = P.penalised_loss(model, batch)
    assert set(m0) == {"task_loss", "accuracy", "mean_rate"}
    w = model.recurrent_weights()
    l1, m1 = P.penalised_loss(model, batch, l1=0.1)
    assert l1.item() == pytest.approx(base.item() + 0.1 * w.abs().sum().item(), rel=1e-5)
    wire, m2 = P.penalised_loss(model, batch, wiring=0.2, distances=d)
    assert wire.item() == pytest.approx(base.item() + 0.2 * (w.abs() * d).sum().item(), rel=1e-5)
    _, m3 = P.penalised_loss(model, batch, rate=1.0)
    assert m3["rate_penalty"] > 0
    _, m4 = P.penalised_loss(model, batch, wiring=0.2, distances=d, communicability=True)
    assert m4["wiring_penalty"] > 0
    with pytest.raises(ValueError, match="distances"):
        P.penalised_loss(model, batch, wiring=1.0)
    with pytest.raises(ValueError, match="l1"):
        P.penalised_loss(model, batch, l1=-1.0)
    with pytest.raises(TypeError, match="communicability"):
        P.penalised_loss(model, batch, wiring=0.1, distances=d, communicability="yes")


def test_penalty_acts_on_effective_weights_under_dale():
    torch.manual_seed(0)
    model = RateRNN(3, 10, 3, dale=True)
    with torch.no_grad():
        model.weight[0, 5] = -4.0  # a silent (rectified) synapse costs nothing
    _, m = P.penalised_loss(model, _toy_batch(), l1=1.0)
    assert m["l1_penalty"] == pytest.approx(model.recurrent_weights().abs().sum().item(), rel=1e-5)


def test_clipping_helpers():
    g = [torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])]
    clipped = clipping.clip_by_norm(g, 1.0)
    total = torch.sqrt(sum((c ** 2).sum() for c in clipped))
    assert total.item() == pytest.approx(1.0)
    assert torch.allclose(clipped[0], torch.tensor([0.6, 0.0]))
    same = clipping.clip_by_norm(g, 10.0)
    assert torch.equal(same[1], g[1])
    assert torch.equal(clipping.clip_by_value(g, 3.5)[1], torch.tensor([[3.5]]))


def test_clipped_sgd_step_bounds_the_change():
    p = torch.nn.Parameter(torch.zeros(4))
    q = torch.nn.Parameter(torch.ones(2))  # no gradient: must stay put
    (p * torch.tensor([100.0, 0, 0, 0])).sum().backward()
    norm = clipping.clipped_sgd_step([p, q], lr=0.1, max_norm=2.0)
    assert norm == pytest.approx(100.0)
    assert torch.allclose(p.detach(), torch.tensor([-0.2, 0, 0, 0]))
    assert torch.equal(q.detach(), torch.ones(2))


def test_near_zero_fraction():
    w = torch.tensor([[1.0, 0.005], [0.02, 0.0]])
    assert P.near_zero_fraction(w) == pytest.approx(0.5)
    # without the diagonal, the largest weight is 0.02: nothing is below 1% of it
    assert P.near_zero_fraction(w, mask=1 - torch.eye(2)) == pytest.approx(0.0)
    assert P.near_zero_fraction(torch.zeros(2, 2)) == 1.0
    with pytest.raises(ValueError, match="mask"):
        P.near_zero_fraction(w, mask=torch.zeros(2, 2))


def test_penalty_gradients_reach_the_parameters():
    torch.manual_seed(0)
    model = RateRNN(3, 8, 3)
    batch = _toy_batch()
    grads = []
    for beta in [0.0, 0.5]:
        model.zero_grad()
        loss, _ = P.penalised_loss(model, batch, l1=beta)
        loss.backward()
        grads.append(model.weight.grad.clone())
    # the L1 term adds beta * scale * sign(W) to the gradient of the parameters
    extra = grads[1] - grads[0]
    expect = 0.5 * model.weight_scale * torch.sign(model.weight.detach()) * model.mask
    assert torch.allclose(extra, expect, atol=1e-5)


def test_custom_penalty_functions_and_step_optimizer():
    torch.manual_seed(0)
    model = RateRNN(3, 8, 3)
    batch = _toy_batch()
    calls = []

    def my_l1(w):
        calls.append("l1")
        return w.abs().sum()

    ref, _ = P.penalised_loss(model, batch, l1=0.1)
    mine, _ = P.penalised_loss(model, batch, l1=0.1, l1_fn=my_l1)
    assert calls == ["l1"] and mine.item() == pytest.approx(ref.item())
    with pytest.raises(TypeError, match="l1_fn"):
        P.penalised_loss(model, batch, l1=0.1, l1_fn=3)
    opt = clipping.StepFunctionOptimizer(model.parameters(), clipping.clipped_sgd_step, lr=0.1, max_norm=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    mine.backward()
    opt.step()
    change = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert change.item() <= 0.1 * 0.5 + 1e-6
    with pytest.raises(TypeError, match="step_fn"):
        clipping.StepFunctionOptimizer(model.parameters(), None, lr=0.1, max_norm=1.0)


def test_fit_penalised_rejects_bad_arguments():
    batch = _toy_batch()
    with pytest.raises(TypeError, match="pool"):
        P.fit_penalised([1, 2], batch)
    with pytest.raises(TypeError, match="test_batch"):
        P.fit_penalised(batch, None)
    with pytest.raises(ValueError, match="unknown penalty options"):
        P.fit_penalised(batch, batch, l2=1.0)


def test_fit_penalised_tiny_run_is_deterministic():
    batch = _toy_batch(B=8)
    a = P.fit_penalised(batch, batch, n_units=6, n_updates=3, batch_size=4, progress=False, l1=1e-3)
    b = P.fit_penalised(batch, batch, n_units=6, n_updates=3, batch_size=4, progress=False, l1=1e-3)
    assert torch.equal(a.weights, b.weights)
    assert a.history["loss"] == b.history["loss"]
    assert 0.0 <= a.accuracy <= 1.0 and a.peak_rate >= a.mean_rate >= 0.0
    assert a.settings["l1"] == 1e-3


def test_lab_checks_accept_references_and_reject_common_mistakes(capsys):
    from utils.checks import ERROR, FAIL, NOT_IMPLEMENTED, PASS
    from utils.checks import cost_function as C

    for name in ["l1_penalty", "rate_penalty", "wiring_cost"]:
        assert getattr(C, f"check_{name}")(getattr(C, f"reference_{name}")).status == PASS
    assert C.check_clipped_sgd_step(clipping.clipped_sgd_step).status == PASS
    assert C.check_l1_penalty(lambda w: w.abs().mean(), quiet=True).status == FAIL
    assert C.check_l1_penalty(lambda w: float(w.abs().sum()), quiet=True).status == FAIL
    assert C.check_l1_penalty(lambda w: w.abs().sum().detach(), quiet=True).status == FAIL
    assert C.check_rate_penalty(lambda r: (r ** 2).sum(), quiet=True).status == FAIL
    assert C.check_rate_penalty(lambda r: r.mean(), quiet=True).status == FAIL
    assert C.check_wiring_cost(lambda w, d: (w * d).sum(), quiet=True).status == FAIL

    def per_parameter(params, lr, max_norm):
        for p in params:
            if p.grad is not None:
                with torch.no_grad():
                    p -= lr * p.grad * min(1.0, max_norm / p.grad.norm().item())
        return 0.0

    def todo(*args):
        raise NotImplementedError

    assert C.check_clipped_sgd_step(per_parameter, quiet=True).status == FAIL
    assert C.check_clipped_sgd_step(todo, quiet=True).status == NOT_IMPLEMENTED
    assert C.check_wiring_cost(lambda w, d: 1 / 0, quiet=True).status == ERROR
    assert C.check_rate_penalty("not a function", quiet=True).status == ERROR
    assert "PASS" in capsys.readouterr().out


def test_l1_proximal_step_gives_exact_zeros():
    w = torch.tensor([[1.0, -0.5], [0.02, -0.01]])
    out = P.l1_proximal_step(w, torch.zeros(2, 2), lr=0.1, beta=0.3)
    assert torch.allclose(out, torch.tensor([[0.97, -0.47], [0.0, 0.0]]))
    assert out[1, 0] == 0 and out[1, 1] == 0
    g = torch.tensor([[0.0, 0.0], [-1.0, 0.0]])          # the task step can revive a weight
    assert P.l1_proximal_step(w, g, 0.1, 0.3)[1, 0] == pytest.approx(0.09)
    with pytest.raises(ValueError):
        P.l1_proximal_step(w, torch.zeros(3, 3), 0.1, 0.3)


def test_lab2_new_checks_pass_references_and_fail_mistakes():
    from utils.checks import FAIL, PASS
    from utils.checks import cost_function as lab2

    assert lab2.check_communicability_wiring_cost(lab2.reference_communicability_wiring_cost,
                                                  quiet=True).status == PASS
    assert lab2.check_l1_proximal_step(P.l1_proximal_step, quiet=True).status == PASS

    def subgradient_step(w, g, lr, beta):
        return w - lr * g - lr * beta * torch.sign(w)

    assert lab2.check_l1_proximal_step(subgradient_step, quiet=True).status == FAIL

    def zero_strength_nan(w, d):
        a = w.abs()
        s = torch.diag(a.sum(1) ** -0.5)
        return (a * d * torch.linalg.matrix_exp(s @ a @ s)).sum()

    assert lab2.check_communicability_wiring_cost(zero_strength_nan, quiet=True).status == FAIL


def test_blocks_are_independent_networks():
    from utils.constraints.penalty_blocks import fit_penalised_blocks

    pool = _toy_batch(T=12, B=64, seed=1)
    d = distance_matrix(grid_positions((2, 2, 2)))
    runs = fit_penalised_blocks(pool, pool, [dict(seed=0), dict(seed=0, l1=1e-2),
                                             dict(seed=1, wiring=1e-2, communicability=True)],
                                n_units=8, n_updates=5, batch_size=4, distances=d, progress=False)
    assert len(runs) == 3 and all(r.weights.shape == (8, 8) for r in runs)
    assert runs[1].settings["l1"] == 1e-2
    assert runs[0].unit_peaks.shape == (8,)
    # a rate penalty per block: a strong one silences its own block only
    quiet = fit_penalised_blocks(pool, pool, [dict(seed=0), dict(seed=0, rate=100.0)], n_units=8,
                                 n_updates=30, batch_size=8, progress=False)
    assert quiet[1].mean_rate < quiet[0].mean_rate
    with pytest.raises(ValueError):
        fit_penalised_blocks(pool, pool, [dict(l1=1.0)], n_units=8, n_updates=1)
    with pytest.raises(ValueError):
        fit_penalised_blocks(pool, pool, [dict(seed=0, wiring=1.0)], n_units=8, n_updates=1)


def test_near_zero_fraction_refuses_non_finite_weights():
    w = torch.ones(3, 3)
    assert P.near_zero_fraction(w) == 0.0
    for bad in (float("nan"), float("inf")):
        w[0, 1] = bad
        with pytest.raises(ValueError, match="weights must be finite"):  # was 0.0: "nothing is zero"
            P.near_zero_fraction(w)


def test_clipping_names_grads_not_params():
    with pytest.raises(TypeError, match="grads must be tensors"):  # was: "params must be ..."
        clipping.clip_by_norm([1.0], 1.0)
    with pytest.raises(TypeError, match="grads must be tensors"):
        clipping.clip_by_value([torch.ones(2), "x"], 1.0)
