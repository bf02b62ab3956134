"""RFLO, random feedback local online learning (chapter 3; Murray 2019), and BPTT for comparison.

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

from typing import Any, Callable

import torch

from ..models.tanh import LeakyTanhRNN
from .feedback_alignment import angle_between
from ..tasks.targets import PeriodicTargetTask, TargetBatch
from ..training.loop import History, train
from ..training.losses import mse_loss
from ..validation import check_int, check_real, check_tensor_shape

__all__ = ["eligibility_step", "rflo_weight_update", "rflo_gradients", "bptt_gradients",
           "train_rflo", "train_bptt"]




# --- RFLO ---------------------------------------------------------------------------------------


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

    Raises:
        ValueError: ``alpha`` outside (0, 1], or shapes that do not match ``trace`` (nothing is
            broadcast: a size-1 dimension is an error, not a copy).
    """
    alpha = check_real("alpha", alpha, low=0.0, high=1.0, low_open=True)
    if trace.dim() != 3 or tuple(u.shape) != tuple(trace.shape[:2]) \
            or tuple(pre.shape) != (trace.shape[0], trace.shape[2]):
        raise ValueError(f"shapes must be trace (batch, n_post, n_pre), u (batch, n_post), "
                         f"pre (batch, n_pre); got trace {tuple(trace.shape)}, u "
                         f"{tuple(u.shape)}, pre {tuple(pre.shape)}")
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

    Raises:
        ValueError: shapes that do not match (nothing is broadcast over the batch).
    """
    if trace.dim() != 3 or error.dim() != 2 or error.shape[0] != trace.shape[0] \
            or tuple(feedback.shape) != (trace.shape[1], error.shape[1]):
        raise ValueError(f"shapes must be trace (batch, n_post, n_pre), error (batch, n_output), "
                         f"feedback (n_post, n_output); got trace {tuple(trace.shape)}, error "
                         f"{tuple(error.shape)}, feedback {tuple(feedback.shape)}")
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
    n, a = model.n_units, model.alpha
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


_NAMES = ("weight", "input_weight", "readout")


def _apply(model: LeakyTanhRNN, optimizer: torch.optim.Optimizer, grads: dict[str, torch.Tensor]) -> None:
    for k in _NAMES:
        getattr(model, k).grad = grads[k]
    optimizer.step()


def train_rflo(model: LeakyTanhRNN, task: PeriodicTargetTask, n_updates: int, *,
               batch_size: int = 16, lr: float = 3e-3, angle_every: int = 0,
               trace_fn: Callable = eligibility_step,
               update_fn: Callable = rflo_weight_update, progress: bool = False) -> History:
    """Train ``model`` with RFLO: one Adam step per batch of trials on the RFLO pseudo-gradients
    (through the course's training loop :func:`utils.training.train`).

    Records ``loss`` and ``readout_alignment`` (degrees between ``W_out`` and ``B^T``) at every
    update, ``seconds`` (cumulative learning time, excluding the angle measurements) and, every
    ``angle_every`` updates (0 = never), ``angle_step`` and ``angle_to_bptt``: the angle between
    the RFLO pseudo-gradient of the recurrent weights and the true BPTT gradient on the same batch,
    before the update.
    """
    batch_fn = _batch_fn(task, check_int("batch_size", batch_size, min_value=1))
    n_updates = check_int("n_updates", n_updates, min_value=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    angle_every = check_int("angle_every", angle_every, min_value=0)
    opt = torch.optim.Adam([getattr(model, k) for k in _NAMES], lr=lr)

    def probe(model: LeakyTanhRNN, batch: TargetBatch, step: int) -> dict[str, float]:
        if not angle_every or (step + 1) % angle_every:
            return {}
        _, g_rflo = rflo_gradients(model, batch, trace_fn=trace_fn, update_fn=update_fn)
        _, g_bptt = bptt_gradients(model, batch)
        return {"angle_step": step, "angle_to_bptt": angle_between(g_rflo["weight"], g_bptt["weight"])}

    def update(model: LeakyTanhRNN, batch: TargetBatch, step: int) -> tuple[float, dict]:
        loss, grads = rflo_gradients(model, batch, trace_fn=trace_fn, update_fn=update_fn)
        _apply(model, opt, grads)
        return loss, {}

    def alignment(model: LeakyTanhRNN, step: int) -> dict[str, float]:
        return {"readout_alignment": angle_between(model.readout, model.feedback.t())}

    return train(model, batch_fn, n_updates, update_fn=update, before_update=probe,
                 after_step=alignment, progress=progress, desc="RFLO")


def train_bptt(model: LeakyTanhRNN, task: PeriodicTargetTask, n_updates: int, *,
               batch_size: int = 16, lr: float = 3e-3, progress: bool = False) -> History:
    """Train ``model`` with BPTT and Adam on the same kind of batches as :func:`train_rflo`
    (through :func:`utils.training.train`). Records ``loss`` and ``seconds`` at every update.
    """
    batch_fn = _batch_fn(task, check_int("batch_size", batch_size, min_value=1))
    n_updates = check_int("n_updates", n_updates, min_value=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    opt = torch.optim.Adam([getattr(model, k) for k in _NAMES], lr=lr)

    def update(model: LeakyTanhRNN, batch: TargetBatch, step: int) -> tuple[float, dict]:
        loss, grads = bptt_gradients(model, batch)
        _apply(model, opt, grads)
        return loss, {}

    return train(model, batch_fn, n_updates, update_fn=update, progress=progress, desc="BPTT")
