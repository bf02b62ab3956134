"""Bounds on how much a synapse may change in one learning step (chapter 2).

Gradient clipping is a crude model of the physical limit on how much a synapse can change at once
(Pascanu et al. 2013 introduced it to tame exploding gradients): :func:`clip_by_norm` bounds the
whole update's length, :func:`clip_by_value` each entry; :func:`clipped_sgd_step` is one plain
gradient step with the norm bound, and :class:`StepFunctionOptimizer` lets the course's training
loop use such a hand-written step.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from ..validation import check_real

__all__ = ["clip_by_norm", "clip_by_value", "clipped_sgd_step", "StepFunctionOptimizer"]


def _grads(params: Iterable[torch.Tensor], name: str = "params") -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name} must be tensors, got {type(p).__name__} at position {i}")
    return params


def clip_by_norm(grads: Iterable[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Scale a list of gradients so that their joint (global) L2 norm is at most ``max_norm``.

    Gradients whose global norm is already within the bound are returned unchanged (as new
    tensors); otherwise all are multiplied by ``max_norm / norm``, keeping their direction.
    """
    grads = _grads(grads, "grads")
    max_norm = check_real("max_norm", max_norm, low=0.0, low_open=True)
    if not grads:
        return []
    norm = torch.sqrt(sum((g.detach().double() ** 2).sum() for g in grads)).item()
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return [g * scale for g in grads]


def clip_by_value(grads: Iterable[torch.Tensor], max_value: float) -> list[torch.Tensor]:
    """Clamp every gradient entry to ``[-max_value, max_value]`` (an elementwise bound)."""
    grads = _grads(grads, "grads")
    max_value = check_real("max_value", max_value, low=0.0, low_open=True)
    return [g.clamp(-max_value, max_value) for g in grads]


@torch.no_grad()
def clipped_sgd_step(params: Iterable[torch.Tensor], lr: float, max_norm: float) -> float:
    """One plain gradient-descent step with the global gradient norm clipped to ``max_norm``.

    Every parameter with a ``.grad`` moves by ``-lr * clipped_grad``; parameters without a
    gradient are left alone. Returns the gradient norm *before* clipping. The largest possible
    change of the whole parameter vector in one step is therefore ``lr * max_norm``.
    """
    params = [p for p in _grads(params) if p.grad is not None]
    lr = check_real("lr", lr, low=0.0, low_open=True)
    max_norm = check_real("max_norm", max_norm, low=0.0, low_open=True)
    if not params:
        return 0.0
    grads = [p.grad for p in params]
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()
    for p, g in zip(params, clip_by_norm(grads, max_norm)):
        p.sub_(lr * g)
    return norm


class StepFunctionOptimizer(torch.optim.Optimizer):
    """Wrap a function ``step_fn(params, lr, max_norm)`` as a torch optimiser.

    Lets :func:`utils.training.train` use a hand-written update such as :func:`clipped_sgd_step`
    (or a student's version of it): ``train(model, ..., optimizer=StepFunctionOptimizer(
    model.parameters(), clipped_sgd_step, lr=0.1, max_norm=1.0))``.
    """

    def __init__(self, params: Iterable[torch.Tensor], step_fn: Callable, lr: float,
                 max_norm: float) -> None:
        if not callable(step_fn):
            raise TypeError(f"step_fn must be a function (params, lr, max_norm), got "
                            f"{type(step_fn).__name__}")
        lr = check_real("lr", lr, low=0.0, low_open=True)
        max_norm = check_real("max_norm", max_norm, low=0.0, low_open=True)
        super().__init__(params, {"lr": lr, "max_norm": max_norm})
        self.step_fn = step_fn

    @torch.no_grad()
    def step(self, closure: Callable | None = None):  # type: ignore[override]
        """Apply ``step_fn`` to all parameters (one group) with the group's ``lr``/``max_norm``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        group = self.param_groups[0]
        self.step_fn(params, group["lr"], group["max_norm"])
        return loss
