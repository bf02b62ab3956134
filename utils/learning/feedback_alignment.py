"""Feedback alignment (chapter 3; Lillicrap et al. 2016).

A layer computes ``y = x W^T + b``. Backprop sends the error back through the transposed forward
weights, ``dL/dx = dL/dy W``; feedback alignment sends it through a fixed random matrix ``B`` of
the same shape instead, ``dL/dx := dL/dy B``. The weight and bias updates of the layer itself are
unchanged (they only need the layer's input and the error arriving at it).
:class:`FeedbackAlignmentFunction` is a custom :class:`torch.autograd.Function` doing exactly that,
so a network built from :class:`FALinear` layers trains with any torch optimiser and the backward
pass never touches ``W``. :func:`fa_angles` measures how the forward weights come to align with
the feedback.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..training.losses import mse_loss
from ..validation import check_choice, check_int, check_tensor_shape

__all__ = ["fa_backward", "FeedbackAlignmentFunction", "fa_linear", "FALinear", "make_mlp",
           "set_rule", "angle_between", "fa_angles"]


def fa_backward(grad_output: torch.Tensor, input: torch.Tensor, weight: torch.Tensor,
                feedback: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward pass of ``y = input @ weight.T + bias`` under feedback alignment.

    Args:
        grad_output: dL/dy, shape (batch, out).
        input: the layer's input x, shape (batch, in).
        weight: forward weights W, shape (out, in) (not used: that is the point).
        feedback: fixed random feedback matrix B, shape (out, in).

    Returns:
        ``(grad_input, grad_weight, grad_bias)``: ``grad_output @ B`` (batch, in) -- where backprop
        would use ``grad_output @ W`` --, ``grad_output.T @ input`` (out, in) and
        ``grad_output.sum(0)`` (out,).
    """
    return grad_output @ feedback, grad_output.t() @ input, grad_output.sum(0)


class FeedbackAlignmentFunction(torch.autograd.Function):
    """``y = x W^T + b`` whose backward pass sends errors through ``B`` instead of ``W``.

    ``apply(input, weight, bias, feedback, backward_fn)``: ``backward_fn`` has the signature of
    :func:`fa_backward` (the lab passes the student's version). ``bias`` may be None.
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                feedback: torch.Tensor, backward_fn: Callable = fa_backward) -> torch.Tensor:
        ctx.save_for_backward(input, weight, feedback)
        ctx.backward_fn = backward_fn
        ctx.has_bias = bias is not None
        out = input @ weight.t()
        return out + bias if bias is not None else out

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        input, weight, feedback = ctx.saved_tensors
        grad_input, grad_weight, grad_bias = ctx.backward_fn(grad_output, input, weight, feedback)
        return (grad_input if ctx.needs_input_grad[0] else None,
                grad_weight if ctx.needs_input_grad[1] else None,
                grad_bias if ctx.has_bias and ctx.needs_input_grad[2] else None, None, None)


def fa_linear(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
              feedback: torch.Tensor, backward_fn: Callable = fa_backward) -> torch.Tensor:
    """Functional feedback-alignment layer: ``input @ weight.T + bias`` (checked shapes)."""
    if not isinstance(input, torch.Tensor) or input.dim() != 2:
        raise ValueError("input must be a tensor of shape (batch, in_features)")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError("weight must be a tensor of shape (out_features, in_features)")
    out_f, in_f = weight.shape
    check_tensor_shape("input", input, (None, in_f))
    check_tensor_shape("feedback", feedback, (out_f, in_f))
    if bias is not None:
        check_tensor_shape("bias", bias, (out_f,))
    if not callable(backward_fn):
        raise TypeError("backward_fn must be a function like utils.learning.feedback_alignment.fa_backward")
    return FeedbackAlignmentFunction.apply(input, weight, bias, feedback, backward_fn)


class FALinear(nn.Module):
    """A linear layer that learns by backprop (``rule="bp"``) or feedback alignment (``"fa"``).

    The initial weights and the fixed feedback matrix ``B`` (a buffer, shape (out, in), Gaussian
    with std ``1/sqrt(out)``) come from a private generator seeded with ``seed``, so a "bp" and an
    "fa" layer built with the same seed start from identical weights. ``backward_fn`` (default
    :func:`fa_backward`) is used in "fa" mode; the lab swaps in the student's function.
    """

    def __init__(self, in_features: int, out_features: int, rule: str = "fa", bias: bool = True,
                 seed: int = 0, backward_fn: Callable = fa_backward) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features, min_value=1)
        self.out_features = check_int("out_features", out_features, min_value=1)
        self.rule = check_choice("rule", rule, ["fa", "bp"])
        seed = check_int("seed", seed, min_value=0)
        if not callable(backward_fn):
            raise TypeError("backward_fn must be a function like utils.learning.feedback_alignment.fa_backward")
        self.backward_fn = backward_fn
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(out_features, in_features, generator=gen)
                                   / math.sqrt(in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("feedback", torch.randn(out_features, in_features, generator=gen)
                             / math.sqrt(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rule == "bp":
            return nn.functional.linear(x, self.weight, self.bias)
        return fa_linear(x, self.weight, self.bias, self.feedback, self.backward_fn)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, rule={self.rule!r}"


def make_mlp(sizes: list[int], rule: str = "fa", seed: int = 0,
             backward_fn: Callable = fa_backward) -> nn.Sequential:
    """A tanh multilayer perceptron of :class:`FALinear` layers, e.g. ``make_mlp([30, 20, 10])``.

    Layer ``k`` is seeded with ``seed + k``, so the same ``seed`` gives the same initial weights
    for ``rule="bp"`` and ``rule="fa"``.
    """
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes must be a list of at least two layer sizes, got {sizes!r}")
    sizes = [check_int(f"sizes[{i}]", s, min_value=1) for i, s in enumerate(sizes)]
    check_choice("rule", rule, ["fa", "bp"])
    seed = check_int("seed", seed, min_value=0)
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if k:
            layers.append(nn.Tanh())
        layers.append(FALinear(n_in, n_out, rule=rule, seed=seed + k, backward_fn=backward_fn))
    return nn.Sequential(*layers)


def set_rule(model: nn.Module, rule: str) -> None:
    """Switch every :class:`FALinear` in ``model`` to ``rule`` ("fa" or "bp")."""
    check_choice("rule", rule, ["fa", "bp"])
    for m in model.modules():
        if isinstance(m, FALinear):
            m.rule = rule


def angle_between(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two tensors seen as flat vectors (0 = same direction).

    Raises ValueError if the sizes differ or either tensor is all zeros (no direction).
    """
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"a and b must be torch tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.numel() != b.numel():
        raise ValueError(f"a and b must have the same number of elements, got {a.numel()} and {b.numel()}")
    a = a.detach().reshape(-1).double()
    b = b.detach().reshape(-1).double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        raise ValueError("a and b must be non-zero: the angle of a zero vector is undefined")
    cos = torch.clamp(a @ b / (na * nb), -1.0, 1.0)
    return math.degrees(math.acos(cos.item()))


def fa_angles(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """How close feedback alignment is to backprop, on one batch ``(x, y)`` (MSE loss).

    Returns ``{"update_angle": ..., "alignment": ...}`` in degrees: the angle between the
    feedback-alignment update of the first layer's weights and the true gradient (computed by
    temporarily switching every layer to backprop), and the angle between the last layer's
    forward weights ``W`` and its feedback matrix ``B``. The model's rules are restored.
    """
    layers = [m for m in model.modules() if isinstance(m, FALinear)]
    if len(layers) < 2:
        raise ValueError("model must contain at least two FALinear layers (see make_mlp)")
    rules = [m.rule for m in layers]
    grads = {}
    try:
        for rule in ("fa", "bp"):
            set_rule(model, rule)
            w = layers[0].weight
            (g,) = torch.autograd.grad(mse_loss(model(x), y), [w])
            grads[rule] = g
    finally:
        for m, r in zip(layers, rules):
            m.rule = r
    return {"update_angle": angle_between(grads["fa"], grads["bp"]),
            "alignment": angle_between(layers[-1].weight, layers[-1].feedback)}
