"""Learning rules a brain might implement: feedback alignment and RFLO (chapter 3).

**Feedback alignment** (Lillicrap et al. 2016). A layer computes ``y = x W^T + b``. Backprop
sends the error back through the transposed forward weights, ``dL/dx = dL/dy W``; feedback
alignment sends it through a fixed random matrix ``B`` of the same shape instead,
``dL/dx := dL/dy B``. The weight and bias updates of the layer itself are unchanged (they only need
the layer's input and the error arriving at it). :class:`FeedbackAlignmentFunction` is a custom
:class:`torch.autograd.Function` doing exactly that, so a network built from :class:`FALinear`
layers trains with any torch optimiser and the backward pass never touches ``W``.

**RFLO** (random feedback local online learning, Murray 2019) for the leaky rate network

.. math::

    u_t = W h_{t-1} + W^{in} x_t,\\qquad h_t = h_{t-1} + \\tfrac{1}{\\tau}\\,(-h_{t-1} + \\tanh u_t),
    \\qquad y_t = W^{out} h_t,

(``tau`` in time steps). Each synapse keeps an eligibility trace, a leaky memory of recent
co-activation of its two neurons,

.. math::

    p_{ab}(t) = \\tfrac{1}{\\tau}\\,\\phi'(u_a(t))\\,h_b(t-1) + \\big(1 - \\tfrac{1}{\\tau}\\big)\\,p_{ab}(t-1),

and changes by ``[B eps(t)]_a p_ab(t)``, where ``eps = y* - y`` is the output error and ``B`` a fixed
random feedback matrix. Input weights use the same rule with ``x_b(t)`` in place of
``h_b(t-1)``; the readout learns by the delta rule ``eps(t) h(t)^T``. Everything runs forward in
time, batched over trials with a few tensor operations per step (:func:`rflo_gradients`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch import nn

from .target_tasks import PeriodicTargetTask, TargetBatch
from .training import History
from .validation import check_choice, check_int, check_real, check_tensor_shape

__all__ = [
    "fa_backward",
    "FeedbackAlignmentFunction",
    "fa_linear",
    "FALinear",
    "make_mlp",
    "set_rule",
    "angle_between",
    "fa_angles",
    "LeakyTanhRNN",
    "eligibility_step",
    "rflo_weight_update",
    "rflo_gradients",
    "bptt_gradients",
    "mse_loss",
    "regression_loss",
    "heldout_mse",
    "train_rflo",
    "train_bptt",
]


# --- feedback alignment -------------------------------------------------------------------------

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
        raise TypeError("backward_fn must be a function like utils.learning_rules.fa_backward")
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
            raise TypeError("backward_fn must be a function like utils.learning_rules.fa_backward")
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


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (time, batch and output dimensions)."""
    if output.shape != target.shape:
        raise ValueError(f"output and target must have the same shape, got {tuple(output.shape)} "
                         f"and {tuple(target.shape)}")
    return (output - target).pow(2).mean()


def regression_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss function for :func:`utils.training.train` on ``(x, y)`` batches: ``mse_loss(model(x), y)``."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("batch must be a pair (x, y) of tensors")
    x, y = batch
    return mse_loss(model(x), y), {}


def heldout_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``mse_loss(model(x), y)`` without recording gradients, as a float."""
    with torch.no_grad():
        return mse_loss(model(x), y).item()


# --- RFLO ---------------------------------------------------------------------------------------

class LeakyTanhRNN(nn.Module):
    """Murray's (2019) leaky tanh rate network, trainable by BPTT or by RFLO.

    ``u_t = W h_{t-1} + W_in x_t``, ``h_t = h_{t-1} + (tanh(u_t) - h_{t-1}) / tau``,
    ``y_t = W_out h_t``, with ``tau`` in time steps. ``feedback`` is the fixed random matrix B
    (n_hidden, n_output) that carries the output error to the units under RFLO.

    Args:
        n_input, n_hidden, n_output: sizes.
        tau: time constant in steps (>= 1).
        gain: recurrent weights start as N(0, gain^2 / n_hidden) (gain > 1: rich dynamics).
        readout_scale: the readout starts as N(0, readout_scale^2 / n_hidden) (0: all zeros).
        seed: seed of every initial weight and of B (same seed, same network for both rules).
    """

    def __init__(self, n_input: int, n_hidden: int, n_output: int, tau: float = 5.0,
                 gain: float = 1.5, readout_scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.n_input = check_int("n_input", n_input, min_value=1)
        self.n_hidden = check_int("n_hidden", n_hidden, min_value=1)
        self.n_output = check_int("n_output", n_output, min_value=1)
        self.tau = check_real("tau", tau, low=1.0)
        gain = check_real("gain", gain, low=0.0)
        readout_scale = check_real("readout_scale", readout_scale, low=0.0)
        seed = check_int("seed", seed, min_value=0)
        gen = torch.Generator().manual_seed(seed)
        n = self.n_hidden
        self.weight = nn.Parameter(gain * torch.randn(n, n, generator=gen) / math.sqrt(n))
        self.input_weight = nn.Parameter(torch.randn(n, self.n_input, generator=gen))
        self.readout = nn.Parameter(readout_scale * torch.randn(self.n_output, n, generator=gen)
                                    / math.sqrt(n))
        self.register_buffer("feedback", torch.randn(n, self.n_output, generator=gen) / math.sqrt(n))

    @property
    def alpha(self) -> float:
        """``1 / tau``, the fraction of the way a unit moves towards its input each step."""
        return 1.0 / self.tau

    def _check_inputs(self, inputs: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or inputs.shape[-1] != self.n_input:
            raise ValueError(f"inputs must be a tensor of shape (time, batch, {self.n_input}), got "
                             f"{tuple(inputs.shape) if hasattr(inputs, 'shape') else type(inputs).__name__}")
        if h0 is None:
            return inputs.new_zeros(inputs.shape[1], self.n_hidden)
        check_tensor_shape("h0", h0, (inputs.shape[1], self.n_hidden))
        return h0

    def forward(self, inputs: torch.Tensor, h0: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network; returns ``(outputs, states)`` of shapes (T, B, n_out), (T, B, N)."""
        h = self._check_inputs(inputs, h0)
        drive = inputs @ self.input_weight.t()
        w_t = self.weight.t()
        a = self.alpha
        states = []
        for t in range(inputs.shape[0]):
            h = torch.lerp(h, torch.tanh(torch.addmm(drive[t], h, w_t)), a)
            states.append(h)
        states_t = torch.stack(states)
        return states_t @ self.readout.t(), states_t


def eligibility_step(trace: torch.Tensor, u: torch.Tensor, pre: torch.Tensor,
                     alpha: float) -> torch.Tensor:
    """One step of the RFLO eligibility trace, batched over trials.

    ``p_ab <- alpha * phi'(u_a) * pre_b + (1 - alpha) * p_ab`` with ``phi = tanh`` and
    ``alpha = 1/tau``.

    Args:
        trace: p(t-1), shape (batch, n_post, n_pre).
        u: postsynaptic input currents u(t), shape (batch, n_post).
        pre: presynaptic activity (h(t-1) for recurrent, x(t) for input weights), (batch, n_pre).
        alpha: 1 / tau, in (0, 1].

    Returns:
        p(t), shape (batch, n_post, n_pre).
    """
    dphi = 1.0 - torch.tanh(u).pow(2)
    # elementwise broadcasting is several times faster on CPU than a batched matmul here
    return torch.addcmul(trace * (1.0 - alpha), dphi.unsqueeze(2), pre.unsqueeze(1), value=alpha)


def rflo_weight_update(trace: torch.Tensor, error: torch.Tensor,
                       feedback: torch.Tensor) -> torch.Tensor:
    """RFLO weight change at one time step, summed over the batch (no learning rate).

    ``dW_ab = sum_trials [B eps]_a p_ab``.

    Args:
        trace: eligibility traces p(t), shape (batch, n_post, n_pre).
        error: output error eps(t) = y*(t) - y(t), shape (batch, n_output).
        feedback: random feedback matrix B, shape (n_post, n_output).

    Returns:
        Weight change, shape (n_post, n_pre).
    """
    signal = error @ feedback.t()                      # [B eps]_a, shape (batch, n_post)
    return (signal.unsqueeze(2) * trace).sum(0)


def _check_batch(model: LeakyTanhRNN, batch: TargetBatch) -> None:
    if not isinstance(model, LeakyTanhRNN):
        raise TypeError(f"model must be a LeakyTanhRNN, got {type(model).__name__}")
    if not isinstance(batch, TargetBatch):
        raise TypeError(f"batch must be a TargetBatch (from a task's .batch()), got {type(batch).__name__}")
    model._check_inputs(batch.inputs, batch.h0)
    check_tensor_shape("batch.targets", batch.targets,
                       (batch.inputs.shape[0], batch.inputs.shape[1], model.n_output))


@torch.no_grad()
def rflo_gradients(model: LeakyTanhRNN, batch: TargetBatch, *,
                   trace_fn: Callable = eligibility_step,
                   update_fn: Callable = rflo_weight_update) -> tuple[float, dict[str, torch.Tensor]]:
    """Run one batch of trials forward in time and collect the RFLO weight changes.

    Returns ``(loss, grads)``: the MSE loss of the batch and, for ``"weight"``, ``"input_weight"``
    and ``"readout"``, the RFLO *pseudo-gradient* -- the accumulated change with its sign flipped
    and scaled like the gradient of the MSE loss (``-2 / (T * batch * n_output)`` times the sum
    over time of the RFLO updates). With ``B = W_out^T`` the recurrent and input entries would be
    the gradient with all non-local terms dropped; the readout entry is the exact gradient.
    Feeding them to any torch optimiser (as ``param.grad``) performs RFLO learning.

    ``trace_fn`` and ``update_fn`` default to :func:`eligibility_step` and
    :func:`rflo_weight_update` (the lab passes the student's versions).
    """
    _check_batch(model, batch)
    x, target, h = batch.inputs, batch.targets, batch.h0
    n_steps, n_batch, _ = x.shape
    n, a = model.n_hidden, model.alpha
    w_t, fb = model.weight.t(), model.feedback
    drive = x @ model.input_weight.t()
    p = x.new_zeros(n_batch, n, n)
    q = x.new_zeros(n_batch, n, model.n_input)
    d_w = torch.zeros_like(model.weight)
    d_in = torch.zeros_like(model.input_weight)
    states, errors = [], []
    for t in range(n_steps):
        u = torch.addmm(drive[t], h, w_t)
        p = trace_fn(p, u, h, a)
        q = trace_fn(q, u, x[t], a)
        h = torch.lerp(h, torch.tanh(u), a)
        err = target[t] - h @ model.readout.t()
        d_w += update_fn(p, err, fb)
        d_in += update_fn(q, err, fb)
        states.append(h)
        errors.append(err)
    states_t, errors_t = torch.stack(states), torch.stack(errors)
    d_out = errors_t.reshape(-1, model.n_output).t() @ states_t.reshape(-1, n)
    scale = -2.0 / (n_steps * n_batch * model.n_output)
    loss = errors_t.pow(2).mean().item()
    return loss, {"weight": scale * d_w, "input_weight": scale * d_in, "readout": scale * d_out}


def bptt_gradients(model: LeakyTanhRNN, batch: TargetBatch) -> tuple[float, dict[str, torch.Tensor]]:
    """The exact gradients of the batch's MSE loss (backpropagation through time).

    Returns ``(loss, grads)`` with the same keys as :func:`rflo_gradients`.
    """
    _check_batch(model, batch)
    out, _ = model(batch.inputs, batch.h0)
    loss = mse_loss(out, batch.targets)
    names = ["weight", "input_weight", "readout"]
    grads = torch.autograd.grad(loss, [getattr(model, k) for k in names])
    return loss.item(), dict(zip(names, grads))


def _batch_fn(task: Any, batch_size: int) -> Callable[[], TargetBatch]:
    if not hasattr(task, "batch"):
        raise TypeError(f"task must have a .batch(batch_size) method (e.g. PeriodicTargetTask), "
                        f"got {type(task).__name__}")
    return lambda: task.batch(batch_size)


def train_rflo(model: LeakyTanhRNN, task: PeriodicTargetTask, n_updates: int, *,
               batch_size: int = 16, lr: float = 3e-3, angle_every: int = 0,
               trace_fn: Callable = eligibility_step,
               update_fn: Callable = rflo_weight_update) -> History:
    """Train ``model`` with RFLO: one Adam step per batch of trials on the RFLO pseudo-gradients.

    Records ``loss`` and ``readout_alignment`` (degrees between ``W_out`` and ``B^T``) at every
    update, ``seconds`` (cumulative learning time, excluding the angle measurements) and, every
    ``angle_every`` updates (0 = never), ``angle_step`` and ``angle_to_bptt``: the angle between
    the RFLO pseudo-gradient of the recurrent weights and the true BPTT gradient on the same batch.
    """
    batch_fn = _batch_fn(task, check_int("batch_size", batch_size, min_value=1))
    n_updates = check_int("n_updates", n_updates, min_value=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    angle_every = check_int("angle_every", angle_every, min_value=0)
    names = ["weight", "input_weight", "readout"]
    params = [getattr(model, k) for k in names]
    opt = torch.optim.Adam(params, lr=lr)
    history = History()
    elapsed = 0.0
    for step in range(n_updates):
        batch = batch_fn()
        start = time.perf_counter()
        loss, grads = rflo_gradients(model, batch, trace_fn=trace_fn, update_fn=update_fn)
        elapsed += time.perf_counter() - start
        if angle_every and (step + 1) % angle_every == 0:
            # the true gradient on the same batch and the same weights, before the update
            _, g_bptt = bptt_gradients(model, batch)
            history.append(angle_step=step,
                           angle_to_bptt=angle_between(grads["weight"], g_bptt["weight"]))
        start = time.perf_counter()
        for p, k in zip(params, names):
            p.grad = grads[k]
        opt.step()
        elapsed += time.perf_counter() - start
        history.append(loss=loss, seconds=elapsed,
                       readout_alignment=angle_between(model.readout, model.feedback.t()))
    return history


def train_bptt(model: LeakyTanhRNN, task: PeriodicTargetTask, n_updates: int, *,
               batch_size: int = 16, lr: float = 3e-3) -> History:
    """Train ``model`` with BPTT and Adam on the same kind of batches as :func:`train_rflo`.

    Records ``loss`` and ``seconds`` (cumulative training time) at every update.
    """
    batch_fn = _batch_fn(task, check_int("batch_size", batch_size, min_value=1))
    n_updates = check_int("n_updates", n_updates, min_value=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    names = ["weight", "input_weight", "readout"]
    params = [getattr(model, k) for k in names]
    opt = torch.optim.Adam(params, lr=lr)
    history = History()
    elapsed = 0.0
    for _ in range(n_updates):
        batch = batch_fn()
        start = time.perf_counter()
        loss, grads = bptt_gradients(model, batch)
        for p, k in zip(params, names):
            p.grad = grads[k]
        opt.step()
        elapsed += time.perf_counter() - start
        history.append(loss=loss, seconds=elapsed)
    return history
