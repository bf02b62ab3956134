import pytest
import torch

from utils.constraints import masks


def test_n_excitatory_rounds_and_keeps_both_types():
    assert masks.n_excitatory(100, 0.8) == 80
    assert masks.n_excitatory(5, 0.8) == 4
    assert masks.n_excitatory(3, 0.99) == 2  # at least one inhibitory unit
    assert masks.n_excitatory(3, 0.01) == 1  # at least one excitatory unit


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5])
def test_e_frac_outside_open_interval_is_rejected(bad):
    with pytest.raises(ValueError, match=r"e_frac must lie in \(0, 1\)"):
        masks.sign_matrix(10, bad)


def test_e_frac_type_error_names_argument():
    with pytest.raises(TypeError, match="e_frac"):
        masks.dale_signs(10, "0.8")


def test_sign_matrix_is_diagonal_with_signs():
    d = masks.sign_matrix(5, 0.8)
    assert torch.equal(d, torch.diag(torch.tensor([1.0, 1, 1, 1, -1])))


def test_dale_mask_columns_carry_sign_and_no_self():
    m = masks.dale_mask(6, 0.5)
    assert torch.all(torch.diagonal(m) == 0)
    off = ~torch.eye(6, dtype=bool)
    assert torch.all(m[:, :3][off[:, :3]] == 1)
    assert torch.all(m[:, 3:][off[:, 3:]] == -1)


def test_sparsity_mask_exact_count_and_determinism():
    m = masks.sparsity_mask(20, 20, 0.3, seed=4)
    assert int((m == 0).sum()) == round(0.3 * 400)
    assert torch.equal(m, masks.sparsity_mask(20, 20, 0.3, seed=4))
    assert not torch.equal(m, masks.sparsity_mask(20, 20, 0.3, seed=5))


def test_sparsity_mask_does_not_touch_global_rng():
    torch.manual_seed(0)
    a = torch.rand(1)
    torch.manual_seed(0)
    masks.sparsity_mask(10, 10, 0.5, seed=1)
    assert torch.equal(a, torch.rand(1))


def test_sparsity_mask_no_self():
    m = masks.sparsity_mask(10, sparsity=0.1, no_self=True)
    assert torch.all(torch.diagonal(m) == 0)
    assert int((m == 0).sum()) == 10 + round(0.1 * 90)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_negative_or_full_sparsity_rejected(bad):
    with pytest.raises(ValueError, match=r"sparsity must lie in \[0, 1\)"):
        masks.sparsity_mask(5, 5, bad)


def test_no_self_needs_square():
    with pytest.raises(ValueError, match="square"):
        masks.sparsity_mask(3, 4, 0.1, no_self=True)


def test_dendritic_block_mask():
    m = masks.dendritic_block_mask(2, 3)
    assert torch.equal(m, torch.tensor([[1.0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]))
    with pytest.raises(ValueError, match="n_branches"):
        masks.dendritic_block_mask(2, 0)


def test_effective_weights_obey_dale_and_mask():
    w = torch.randn(8, 8)
    signs = masks.dale_signs(8, 0.75)
    mask = masks.sparsity_mask(8, 8, 0.4, seed=0)
    eff = masks.effective_weights(w, signs, mask)
    assert torch.all(torch.diagonal(eff) == 0)
    assert torch.all(eff[:, :6] >= 0) and torch.all(eff[:, 6:] <= 0)
    assert torch.all(eff[mask == 0] == 0)


def test_effective_weights_wrong_mask_shape():
    with pytest.raises(ValueError, match=r"mask must have shape \(4, 4\)"):
        masks.effective_weights(torch.randn(4, 4), torch.ones(4), torch.ones(3, 3))


def test_sparsity_mask_from_a_generator():
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    m = masks.sparsity_mask(12, 12, 0.25, generator=gen)
    assert int((m == 0).sum()) == 36
    assert not torch.equal(state, gen.get_state())          # the generator was used
    again = torch.Generator()
    again.set_state(state)
    assert torch.equal(m, masks.sparsity_mask(12, 12, 0.25, generator=again))
    with pytest.raises(TypeError):
        masks.sparsity_mask(4, 4, 0.5, generator=3)


def test_cell_type_mask_probabilities_and_errors():
    types = torch.arange(600) % 2
    p = torch.tensor([[0.0, 1.0], [0.3, 0.5]])
    m = masks.cell_type_mask(types, p, torch.Generator().manual_seed(0))
    assert torch.all(torch.diagonal(m) == 0)
    assert torch.all(m[types == 0][:, types == 0] == 0)
    block = m[types == 0][:, types == 1]
    assert torch.all(block == 1)
    assert abs(float(m[types == 1][:, types == 0].mean()) - 0.3) < 0.02
    with pytest.raises(ValueError):
        masks.cell_type_mask(torch.tensor([0, 2]), p, torch.Generator())
    with pytest.raises(ValueError):
        masks.cell_type_mask(types, torch.tensor([[1.5, 0.0], [0.0, 0.0]]), torch.Generator())
    with pytest.raises(TypeError):
        masks.cell_type_mask(types, p, None)


def test_effective_weights_refuses_signs_and_masks_out_of_range():
    w, signs = torch.ones(3, 3), torch.tensor([1.0, 1.0, -1.0])
    assert masks.effective_weights(w, signs)[0, 2] == -1
    for bad in ([2.0, 1.0, -1.0], [0.0, 1.0, -1.0]):  # was: a weight of 2 (or 0) for unit 0
        with pytest.raises(ValueError, match="signs must be"):
            masks.effective_weights(w, torch.tensor(bad))
    with pytest.raises(ValueError, match="mask must"):
        masks.effective_weights(w, signs, -torch.ones(3, 3))


def test_single_sign_fraction():
    from utils.constraints.masks import single_sign_fraction
    w = torch.tensor([[0.0, -1.0, 2.0], [1.0, -2.0, -3.0], [0.5, 0.0, 0.0]])
    assert single_sign_fraction(w) == pytest.approx(2 / 3)   # the third column has both signs
    assert single_sign_fraction(torch.zeros(3, 3)) == 1.0
    with pytest.raises(ValueError, match="square"):
        single_sign_fraction(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="finite"):
        single_sign_fraction(torch.full((2, 2), float("nan")))
