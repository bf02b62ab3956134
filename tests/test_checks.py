import torch

from utils.constraints import masks

from utils.checks import ERROR, FAIL, NOT_IMPLEMENTED, PASS, use_or_reference
from utils.checks import architecture as arch


def test_reference_implementations_pass(capsys):
    from utils import models
    from utils.models.rate import count_constraint_violations

    # each exercise is checked against the library function of the same name (the sparsity mask,
    # whose lab signature differs, against its reference_ wrapper)
    for name, reference in [("sign_matrix", masks.sign_matrix), ("dale_mask", masks.dale_mask),
                            ("sparsity_mask", arch.reference_sparsity_mask),
                            ("constrained_step", models.constrained_step),
                            ("dendritic_block_mask", masks.dendritic_block_mask),
                            ("cell_type_mask", masks.cell_type_mask),
                            ("count_violations", count_constraint_violations)]:
        assert getattr(arch, f"check_{name}")(reference).status == PASS
    assert "PASS" in capsys.readouterr().out


def test_not_implemented_wrong_and_raising_answers_never_raise(capsys):
    def todo(n, e):
        raise NotImplementedError("stub")

    assert arch.check_sign_matrix(todo).status == NOT_IMPLEMENTED
    wrong = arch.check_sign_matrix(lambda n, e: torch.eye(n))
    assert wrong.status == FAIL and "Hint" in wrong.message
    assert arch.check_sign_matrix(lambda n, e: 1 / 0).status == ERROR
    assert arch.check_sign_matrix(42).status == ERROR
    out = capsys.readouterr().out
    assert "NOT IMPLEMENTED" in out and "FAIL" in out


def test_sparsity_check_catches_wrong_count_and_nondeterminism():
    assert arch.check_sparsity_mask(lambda n, s, gen: torch.ones(n, n), quiet=True).status == FAIL
    assert arch.check_sparsity_mask(lambda n, s, gen: (torch.rand(n, n) > s).float(),
                                    quiet=True).status == FAIL


def _reseeding_mask(n, s, gen):
    # the loophole of the first edition: exact count, deterministic, but through the global RNG
    torch.manual_seed(gen.initial_seed())
    m = torch.ones(n * n)
    m[torch.randperm(n * n)[:round(s * n * n)]] = 0.0
    return m.view(n, n)


def test_sparsity_check_catches_the_global_generator():
    assert arch.check_sparsity_mask(_reseeding_mask, quiet=True).status == FAIL
    # and the grading cases (generators in states no seed produces) catch it too
    a = _reseeding_mask(30, 0.5, arch.advanced_generator(1, 5))
    b = _reseeding_mask(30, 0.5, arch.advanced_generator(1, 9))
    assert torch.equal(a, b)
    assert not torch.equal(arch.reference_sparsity_mask(30, 0.5, arch.advanced_generator(1, 5)),
                           arch.reference_sparsity_mask(30, 0.5, arch.advanced_generator(1, 9)))


def test_violation_check_catches_a_check_that_cannot_fail():
    def effective_only(weight, effective, signs, mask):
        return int(((effective * signs[None, :]) < 0).sum())

    assert arch.check_count_violations(effective_only, quiet=True).status == FAIL


def test_cell_type_check_catches_transposed_table():
    def transposed(types, p, gen):
        return masks.cell_type_mask(types, torch.as_tensor(p).t(), gen)

    assert arch.check_cell_type_mask(transposed, quiet=True).status == FAIL


def test_constrained_step_check_catches_missing_rectification():
    def no_relu(x, weight, signs, mask, drive, alpha):
        n = weight.shape[0]
        w = weight * mask * (1 - torch.eye(n)) * signs[None, :]
        return (1 - alpha) * x + alpha * torch.relu(x) @ w.T + drive

    assert arch.check_constrained_step(no_relu, quiet=True).status == FAIL


def test_use_or_reference(capsys):
    def todo(n, e):
        raise NotImplementedError

    assert use_or_reference(todo, arch.check_sign_matrix, masks.sign_matrix) is masks.sign_matrix
    assert "reference implementation" in capsys.readouterr().out
    mine = lambda n, e: masks.sign_matrix(n, e)  # noqa: E731
    assert use_or_reference(mine, arch.check_sign_matrix, masks.sign_matrix) is mine
