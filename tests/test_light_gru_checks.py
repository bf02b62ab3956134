"""Lab 4's self-checks pass the references and fail typical mistakes."""

import torch

from utils.checks import light_gru as lab


def test_references_pass():
    assert lab.check_light_gru_step(lab.reference_light_gru_step).passed
    assert lab.check_dale_recurrent(lab.reference_dale_recurrent).passed
    assert lab.check_selectivity_index(lab.reference_selectivity_index).passed
    assert lab.check_histogram_values(lab.reference_histogram_values).passed
    assert lab.check_units_to_lesion(lab.reference_units_to_lesion).passed


def test_typical_mistakes_fail():
    def swapped_gate(h, dz, dh, uz, uh):             # z weights the candidate instead of the old state
        z = torch.sigmoid(dz + h @ uz.t())
        return (1 - z) * h + z * torch.relu(dh + h @ uh.t())

    def sign_flip_only(weight, signs):               # the coursework's mask: not Dale's law
        return weight * (1 - torch.eye(weight.shape[0])) * signs[None, :]

    def coursework_d(states, a, b):                  # the factor 2 instead of sqrt(2)
        return 2 * (states[a].mean(0) - states[b].mean(0)) / torch.sqrt(
            states[a].var(0, unbiased=False) + states[b].var(0, unbiased=False) + 1e-12)

    def keeps_silent(indices, max_act, min_activation):
        return indices.abs().amax(0).flatten()

    def ignores_silence(d, act, k, min_activation):
        return torch.argsort(d, descending=True)[:k]

    assert not lab.check_light_gru_step(swapped_gate).passed
    assert not lab.check_dale_recurrent(sign_flip_only).passed
    assert not lab.check_selectivity_index(coursework_d).passed
    assert not lab.check_histogram_values(keeps_silent).passed
    assert not lab.check_units_to_lesion(ignores_silence).passed
