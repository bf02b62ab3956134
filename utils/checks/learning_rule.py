"""Self-checks for Lab 3 (the learning rule): the feedback-alignment backward pass, the RFLO
eligibility-trace step and the RFLO weight update, each compared with the reference on a tiny
network. The ``reference_*`` functions have the lab's signatures."""

from __future__ import annotations

import torch

from ..learning import feedback_alignment, rflo
from .core import expect, expect_close, self_check

__all__ = ["reference_fa_backward", "reference_eligibility_step", "reference_rflo_weight_update",
           "check_fa_backward", "check_eligibility_step", "check_rflo_weight_update"]

reference_fa_backward = feedback_alignment.fa_backward
reference_eligibility_step = rflo.eligibility_step
reference_rflo_weight_update = rflo.rflo_weight_update


@self_check("Exercise 3.1: the feedback-alignment backward pass",
            hint="grad_input = grad_output @ feedback (not weight); grad_weight = grad_output.T @ "
                 "input; grad_bias = grad_output.sum(0).")
def check_fa_backward(fn):
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(5, 3, generator=gen)
    x = torch.randn(5, 4, generator=gen)
    w = torch.randn(3, 4, generator=gen)
    fb = torch.randn(3, 4, generator=gen)
    got = fn(g, x, w, fb)
    expect(isinstance(got, (tuple, list)) and len(got) == 3,
           "return a tuple (grad_input, grad_weight, grad_bias)")
    ref = reference_fa_backward(g, x, w, fb)
    for name, a, b in zip(["grad_input", "grad_weight", "grad_bias"], got, ref):
        if name == "grad_input" and torch.allclose(torch.as_tensor(a), g @ w, atol=1e-5):
            expect(False, "grad_input uses the forward weights: that is backprop, not feedback alignment")
        expect_close(a, b, name)


@self_check("Exercise 3.2: the RFLO eligibility-trace step",
            hint="p_new = (1 - alpha) * p + alpha * phi'(u)[:, :, None] * pre[:, None, :], "
                 "with phi'(u) = 1 - tanh(u)**2.")
def check_eligibility_step(fn):
    gen = torch.Generator().manual_seed(1)
    p = torch.randn(2, 3, 4, generator=gen)
    u = torch.randn(2, 3, generator=gen)
    pre = torch.randn(2, 4, generator=gen)
    expect_close(fn(p, u, pre, 0.2), reference_eligibility_step(p, u, pre, 0.2),
                 "eligibility_step(trace, u, pre, alpha=0.2)")
    expect_close(fn(torch.zeros(2, 3, 4), u, pre, 1.0),
                 reference_eligibility_step(torch.zeros(2, 3, 4), u, pre, 1.0),
                 "eligibility_step(zeros, u, pre, alpha=1)")


@self_check("Exercise 3.3: the RFLO weight update",
            hint="signal = error @ feedback.T has shape (batch, n_post); the update is "
                 "(signal[:, :, None] * trace).sum(0).")
def check_rflo_weight_update(fn):
    gen = torch.Generator().manual_seed(2)
    p = torch.randn(3, 4, 5, generator=gen)
    err = torch.randn(3, 2, generator=gen)
    fb = torch.randn(4, 2, generator=gen)
    expect_close(fn(p, err, fb), reference_rflo_weight_update(p, err, fb),
                 "rflo_weight_update(trace, error, feedback)")
