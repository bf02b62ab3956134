"""Lab 5's self-checks pass the references and fail typical mistakes."""

import math

import torch

from utils.checks import context_decision as lab
from utils.training.weighted_losses import class_weights


def test_references_pass():
    assert lab.check_class_weights(class_weights, quiet=True).passed
    assert lab.check_ideal_accuracy(lab.reference_ideal_accuracy, quiet=True).passed
    assert lab.check_choice_selectivity(lab.reference_choice_selectivity, quiet=True).passed
    assert lab.check_shared_choice_units(lab.reference_shared_choice_units, quiet=True).passed


def test_typical_mistakes_fail():
    def frequencies(labels, n_classes):                 # the frequencies, not their inverse
        return torch.bincount(labels, minlength=n_classes).float() / len(labels)

    def inverse_counts_no_zero(labels, n_classes):      # absent class: division by zero -> inf
        return len(labels) / (n_classes * torch.bincount(labels, minlength=n_classes).float())

    def one_channel_noise(coh, n_steps, sigma):         # forgets the second channel's noise
        z = math.sqrt(n_steps) * coh / (100 * sigma)
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    def pooled_contexts(states, choices, contexts):     # ignores the context
        from utils.analysis.selectivity import selectivity
        d = selectivity(states, choices == 1, choices == 2)
        return torch.stack([d, d])

    def largest_anywhere(d, k):                         # selective in one context is enough
        return torch.argsort(d.abs().amax(0), descending=True)[:k]

    assert not lab.check_class_weights(frequencies, quiet=True).passed
    assert not lab.check_class_weights(inverse_counts_no_zero, quiet=True).passed
    assert not lab.check_ideal_accuracy(one_channel_noise, quiet=True).passed
    assert not lab.check_ideal_accuracy(lambda c, n, s: "0.9", quiet=True).passed
    assert not lab.check_choice_selectivity(pooled_contexts, quiet=True).passed
    assert not lab.check_shared_choice_units(largest_anywhere, quiet=True).passed
