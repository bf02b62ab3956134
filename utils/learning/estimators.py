"""Learning rules as gradient estimators (chapter 3, Lab 3).

Every learning rule of chapter 3 produces, for one batch, an update that stands in for the
gradient of the expected loss. Treating that update as an *estimator* of the true gradient gives
three numbers that compare rules on one scale: the cosine between a single update and the true
gradient, the **bias** (how far the average update is from the true gradient) and the
**variance** (how much single updates scatter around their average), both relative to the true
gradient's squared norm.

- :func:`node_perturbation_grad`: node perturbation for one linear layer with a squared error
  (the lab's exercise): jiggle the outputs, see whether the loss went up or down, and credit the
  jiggle accordingly. Unbiased, but its variance grows with the number of perturbed units.
- :func:`mlp_node_perturbation`: the same for every layer of a :func:`make_mlp` network at once.
- :class:`KolenPollack`: an ``after_step`` callback for :func:`utils.training.train` that gives
  the feedback matrices of a feedback-alignment network the same change as their forward
  weights, plus a common decay, so that ``B - W`` shrinks geometrically (Akrout et al. 2019).
- :func:`gradient_estimator_stats`: cosine, bias and variance of a stack of estimates.
- :func:`mlp_estimator_stats`, :func:`rnn_estimator_stats`: the chapter's measurements.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..models.tanh import LeakyTanhRNN
from ..training.losses import mse_loss
from .feedback_alignment import FALinear, set_rule
from .rflo import bptt_gradients, rflo_gradients
from ..validation import check_int, check_real

__all__ = ["node_perturbation_grad", "mlp_node_perturbation", "KolenPollack",
           "gradient_estimator_stats", "mlp_estimator_stats", "rnn_estimator_stats"]


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


@torch.no_grad()
def node_perturbation_grad(weight: torch.Tensor, x: torch.Tensor, target: torch.Tensor,
                           sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Node-perturbation estimate of ``dL/dW`` for ``L = 1/2 sum_b ||x_b W^T - t_b||^2``.

    Each trial's output ``y_b = W x_b`` is perturbed by ``delta_b = sigma * xi_b`` (standard
    normal ``xi_b`` drawn from ``generator``); the loss change ``dL_b`` of that trial alone
    credits the perturbation: ``g = sum_b (dL_b / sigma^2) delta_b x_b^T``. Because
    ``E[(e . xi) xi] = e`` this is an unbiased estimate of the gradient ``sum_b e_b x_b^T``
    (``e_b = y_b - t_b``), whatever ``sigma`` (for a quadratic loss), and it needs only the
    scalar loss change, no error vector and no weight transport.

    Args:
        weight: (n_out, n_in). x: (batch, n_in). target: (batch, n_out).
        sigma: perturbation size (> 0). generator: source of the perturbations.
    """
    if not all(isinstance(t, torch.Tensor) for t in (weight, x, target)):
        raise TypeError("weight, x and target must be torch tensors")
    if weight.dim() != 2 or x.dim() != 2 or target.dim() != 2:
        raise ValueError("weight must be (n_out, n_in), x (batch, n_in) and target (batch, n_out)")
    if x.shape[1] != weight.shape[1] or target.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"shapes do not fit: weight {tuple(weight.shape)}, x {tuple(x.shape)}, "
                         f"target {tuple(target.shape)}")
    sigma = check_real("sigma", sigma, low=0.0, low_open=True)
    _check_generator(generator)
    y = x @ weight.t()
    delta = sigma * torch.randn(y.shape, generator=generator, dtype=y.dtype)
    d_loss = 0.5 * ((y + delta - target).pow(2).sum(1) - (y - target).pow(2).sum(1))
    return ((d_loss / sigma ** 2)[:, None] * delta).t() @ x


def _fa_layers(model: nn.Module) -> list[FALinear]:
    layers = [m for m in model.modules() if isinstance(m, FALinear)]
    if not layers:
        raise ValueError("model must contain FALinear layers (see utils.learning_rules.make_mlp)")
    return layers


@torch.no_grad()
def mlp_node_perturbation(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, sigma: float,
                          generator: torch.Generator) -> list[torch.Tensor]:
    """Node-perturbation estimates of ``d mse_loss(model(x), y) / dW`` for every layer at once.

    ``model`` is a :func:`make_mlp` network (``FALinear`` layers with tanh between them). Every
    layer's pre-activation is perturbed by ``sigma * xi`` in the same forward pass; each trial's
    change of its share of the loss credits every layer's perturbation. Returns one estimate per
    ``FALinear`` weight, in order. Unbiased to first order in ``sigma``.
    """
    sigma = check_real("sigma", sigma, low=0.0, low_open=True)
    _check_generator(generator)
    layers = _fa_layers(model)
    n_batch = x.shape[0]

    def run(noisy: bool):
        h, inputs, deltas = x, [], []
        for m in model:
            if isinstance(m, FALinear):
                inputs.append(h)
                z = nn.functional.linear(h, m.weight, m.bias)
                if noisy:
                    d = sigma * torch.randn(z.shape, generator=generator, dtype=z.dtype)
                    deltas.append(d)
                    z = z + d
                h = z
            else:
                h = m(h)
        per_trial = (h - y).pow(2).sum(1) / (n_batch * y.shape[1])
        return per_trial, inputs, deltas

    clean, inputs, _ = run(False)
    noisy, _, deltas = run(True)
    credit = (noisy - clean) / sigma ** 2
    grads = [(credit[:, None] * d).t() @ a for d, a in zip(deltas, inputs)]
    if len(grads) != len(layers):
        raise ValueError("model must be a plain nn.Sequential of FALinear and activation layers")
    return grads


class KolenPollack:
    """``after_step`` callback turning a feedback-alignment network into Kolen-Pollack learning.

    After every optimiser step, each ``FALinear`` layer's feedback matrix ``B`` receives the same
    change as its forward weights ``W`` (the update is local: both sides of the "synapse" see the
    same error and the same presynaptic activity), then both decay by the factor ``1 - decay``.
    ``B - W`` is therefore multiplied by ``1 - decay`` at every update and the backward pathway
    converges to the transposed forward pathway: learning approaches backprop without weight
    transport (Kolen & Pollack 1994; Akrout et al. 2019). Use with a network built by
    ``make_mlp(..., rule="fa")``: ``train(..., after_step=KolenPollack(net, decay=1e-2))``.
    Returns ``{"kp_distance": ||B - W|| / ||W||}`` of the last layer for the history.
    """

    def __init__(self, model: nn.Module, decay: float = 1e-2) -> None:
        self.decay = check_real("decay", decay, low=0.0, high=1.0, high_open=True)
        self.layers = _fa_layers(model)
        self.previous = [m.weight.detach().clone() for m in self.layers]

    @torch.no_grad()
    def __call__(self, model: nn.Module, step: int) -> dict[str, float]:
        for m, old in zip(self.layers, self.previous):
            m.feedback.add_(m.weight - old)
            m.weight.mul_(1.0 - self.decay)
            m.feedback.mul_(1.0 - self.decay)
            old.copy_(m.weight)
        last = self.layers[-1]
        return {"kp_distance": float((last.feedback - last.weight).norm() / last.weight.norm())}


def gradient_estimator_stats(estimates, true_grad: torch.Tensor) -> dict[str, float]:
    """Cosine, bias and variance of gradient estimates (chapter 3, Lab 3).

    Args:
        estimates: K estimates of the same gradient, a tensor (K, ...) or a list of tensors.
        true_grad: the true gradient (...), non-zero.

    Returns ``{"cosine", "bias", "variance"}``, all on flattened tensors and relative to
    ``||g||^2``: the mean over the K estimates of the cosine between one estimate and the true
    gradient; the variance ``v = sum_k ||e_k - mean||^2 / (K - 1)``; and the squared bias
    ``||E[e] - g||^2``, estimated as ``||mean - g||^2 - v / K``: the mean of K estimates
    scatters around ``E[e]`` by ``v / K`` even for an unbiased estimator, so that share is
    removed (by chance the result can then be slightly negative when the true bias is zero).
    The variance tells how many estimates must be averaged before the update points the right
    way.
    """
    if isinstance(estimates, (list, tuple)):
        estimates = torch.stack([torch.as_tensor(e) for e in estimates])
    if not isinstance(estimates, torch.Tensor) or not isinstance(true_grad, torch.Tensor):
        raise TypeError("estimates and true_grad must be torch tensors (or a list of tensors)")
    if estimates.dim() < 1 or estimates.shape[1:] != true_grad.shape or estimates.shape[0] < 2:
        raise ValueError(f"estimates must have shape (K >= 2, *{tuple(true_grad.shape)}), got "
                         f"{tuple(estimates.shape)}")
    e = estimates.detach().reshape(estimates.shape[0], -1).double()
    g = true_grad.detach().reshape(-1).double()
    g2 = float(g @ g)
    if g2 == 0:
        raise ValueError("true_grad is zero: cosine, bias and variance are undefined")
    mean = e.mean(0)
    norms = e.norm(dim=1).clamp(min=1e-300)
    cosine = float(((e @ g) / (norms * math.sqrt(g2))).mean())
    k = e.shape[0]
    variance = float((e - mean).pow(2).sum(1).sum()) / (k - 1) / g2
    bias = float((mean - g).pow(2).sum()) / g2 - variance / k
    return {"cosine": cosine, "bias": bias, "variance": variance}


def _layer_grad(model: nn.Module, rule: str, x: torch.Tensor, y: torch.Tensor, layer: int
                ) -> torch.Tensor:
    layers = _fa_layers(model)
    rules = [m.rule for m in layers]
    try:
        set_rule(model, rule)
        (g,) = torch.autograd.grad(mse_loss(model(x), y), [layers[layer].weight])
    finally:
        for m, r in zip(layers, rules):
            m.rule = r
    return g


def mlp_estimator_stats(model: nn.Sequential, batch_fn: Callable, n_batches: int, *,
                        rules: tuple[str, ...] = ("bp", "fa", "np"), sigma: float = 1e-2,
                        true_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                        layer: int = 0, seed: int = 0) -> dict[str, dict[str, float]]:
    """Each rule's update of one layer's weights as an estimator of the true gradient.

    The true gradient is backprop's gradient on ``true_batch`` (a large sample standing in for
    the expected loss). For ``n_batches`` batches from ``batch_fn`` it collects backprop's batch
    gradient ("bp"), the feedback-alignment update through the model's own ``B`` ("fa"; for a
    network trained with :class:`KolenPollack` this is the Kolen-Pollack update) and the
    node-perturbation estimate ("np", perturbation ``sigma``), and returns
    :func:`gradient_estimator_stats` for each. The model is not changed.
    """
    n_batches = check_int("n_batches", n_batches, min_value=2)
    if true_batch is None:
        raise ValueError("true_batch (x, y) is required: a large sample for the true gradient")
    gen = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))
    true = _layer_grad(model, "bp", *true_batch, layer)
    estimates: dict[str, list[torch.Tensor]] = {r: [] for r in rules}
    for _ in range(n_batches):
        x, y = batch_fn()
        for r in rules:
            if r == "np":
                estimates[r].append(mlp_node_perturbation(model, x, y, sigma, gen)[layer])
            elif r in ("bp", "fa"):
                estimates[r].append(_layer_grad(model, r, x, y, layer))
            else:
                raise ValueError(f"rules must be among 'bp', 'fa', 'np', got {r!r}")
    return {r: gradient_estimator_stats(e, true) for r, e in estimates.items()}


def rnn_estimator_stats(model: LeakyTanhRNN, task, n_batches: int, *, batch_size: int = 8,
                        true_batch_size: int = 512, key: str = "weight"
                        ) -> dict[str, dict[str, float]]:
    """RFLO and BPTT batch updates of one weight matrix as estimators of the true gradient.

    The true gradient is BPTT's gradient on ``true_batch_size`` trials of ``task``; the
    estimates are RFLO's pseudo-gradient (:func:`rflo_gradients`) and BPTT's gradient on
    ``n_batches`` batches of ``batch_size`` trials. Returns :func:`gradient_estimator_stats`
    for "RFLO" and "BPTT".
    """
    n_batches = check_int("n_batches", n_batches, min_value=2)
    _, true = bptt_gradients(model, task.batch(check_int("true_batch_size", true_batch_size,
                                                         min_value=1)))
    est: dict[str, list[torch.Tensor]] = {"RFLO": [], "BPTT": []}
    for _ in range(n_batches):
        batch = task.batch(batch_size)
        est["RFLO"].append(rflo_gradients(model, batch)[1][key])
        est["BPTT"].append(bptt_gradients(model, batch)[1][key])
    return {r: gradient_estimator_stats(e, true[key]) for r, e in est.items()}
