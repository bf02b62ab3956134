"""Several independent rate networks trained in one pass: one network per seed (chapter 9).

A chapter that reports a result "over three seeds" trains three networks. On a laptop CPU a
100-unit network with a batch of 16 trials spends most of its time in Python and in launching
small tensor operations, not in arithmetic, so three networks cost three times one. A
:class:`RateRNNEnsemble` stacks the parameters of ``S`` :class:`~utils.models.rate.RateRNN`
members along a leading axis and runs all of them with one batched matrix product per time step
(:class:`EnsembleRNNFunction`, hand-written backward pass like :class:`~utils.models.rate.LeakyRNNFunction`):
the same number of Python operations as one network.

The members stay independent: they share no parameter, and member ``k`` sees only its own trials.
A batch of ``S * b`` trials is split in ``S`` consecutive groups of ``b``: trials
``k*b ... (k+1)*b - 1`` go to member ``k``. So any ``loss_fn`` of :func:`utils.training.train`
that averages over trials works unchanged: each member's gradient is ``1/S`` times the gradient
it would get alone, which Adam's per-parameter normalisation ignores. (Clip gradients with
:meth:`RateRNNEnsemble.clip_grad_` per member; the loop's global ``clip_grad`` would couple
them.) :meth:`RateRNNEnsemble.member` returns member ``k`` as an ordinary :class:`RateRNN` for
analysis.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .rate import RateRNN, leaky_backward_states, leaky_forward_states
from ..validation import check_int, check_real

__all__ = ["EnsembleRNNFunction", "RateRNNEnsemble"]


class EnsembleRNNFunction(torch.autograd.Function):
    """``S`` leaky ReLU networks at once: ``x_t = (1-a) x_{t-1} + a W_s relu(x_{t-1}) + drive_t``.

    Inputs: ``drive`` (T, S, B, N) (already multiplied by ``a``, noise included), ``weight``
    (S, N, N), ``alpha`` (float); the state starts at zero. Output: rates (T, S, B, N).
    """

    @staticmethod
    def forward(ctx, drive: torch.Tensor, weight: torch.Tensor, alpha: float) -> torch.Tensor:
        xs, rs = leaky_forward_states(drive, weight, torch.zeros_like(drive[0]), alpha)
        ctx.save_for_backward(weight, xs, rs)
        ctx.alpha = alpha
        return rs

    @staticmethod
    def backward(ctx, grad_rs: torch.Tensor):
        weight, xs, rs = ctx.saved_tensors
        alpha = ctx.alpha
        T, S, B, N = xs.shape
        gxs = leaky_backward_states(grad_rs, xs, weight, alpha)
        grad_weight = None
        if ctx.needs_input_grad[1]:
            r_prev = torch.cat([torch.zeros_like(rs[:1]), rs[:-1]], dim=0)
            g = gxs.permute(1, 3, 0, 2).reshape(S, N, T * B)
            r = r_prev.permute(1, 0, 2, 3).reshape(S, T * B, N)
            grad_weight = alpha * torch.bmm(g, r)
        return gxs, grad_weight, None


def _same_config(a: RateRNN, b: RateRNN) -> bool:
    keys = ("n_input", "n_units", "n_output", "tau", "dt", "sigma_rec", "dale", "n_exc",
            "readout_mode", "dropout")
    return all(getattr(a, k) == getattr(b, k) for k in keys) and torch.equal(a.signs, b.signs)


class RateRNNEnsemble(nn.Module):
    """``S`` independent :class:`~utils.models.rate.RateRNN` networks run as one module (chapter 9).

    Args:
        members: the networks, e.g. ``[RateRNN(...) built after set_seed(s) for s in seeds]``:
            their current parameters become the ensemble's (so member ``k`` starts exactly where
            the network built for seed ``k`` would). All must have the same sizes, ``tau``,
            ``dt``, noise, Dale's law, readout mode and dropout, and a plain linear input layer
            (no dendritic input).

    ``forward(u)`` takes ``u`` (time, S * b, n_input) -- member ``k`` gets trials ``k*b`` to
    ``(k+1)*b - 1`` -- and returns ``(outputs, rates)`` of shapes (time, S * b, n_output) and
    (time, S * b, n_units), the members' outputs side by side in the same trial order. To run
    every member on the same trials, repeat them: ``u.repeat(1, S, 1)`` (see :meth:`per_member`).
    """

    def __init__(self, members: list[RateRNN]) -> None:
        super().__init__()
        if not isinstance(members, (list, tuple)) or not members \
                or not all(isinstance(m, RateRNN) for m in members):
            raise TypeError("members must be a non-empty list of RateRNN networks")
        first = members[0]
        for i, m in enumerate(members):
            if not isinstance(m.input_layer, nn.Linear):
                raise ValueError(f"members[{i}] has a dendritic input stage; the ensemble needs a "
                                 f"linear input layer")
            if not _same_config(first, m):
                raise ValueError(f"members[{i}] differs from members[0] in size, time constants, "
                                 f"noise, Dale's law, readout or dropout")
        self.n_members = len(members)
        for k in ("n_input", "n_units", "n_output", "tau", "dt", "sigma_rec", "dale", "n_exc",
                  "readout_mode", "dropout"):
            setattr(self, k, getattr(first, k))
        # the architecture, for member(); in a list so that it is not a registered submodule
        self._template = [copy.deepcopy(first)]
        self.register_buffer("mask", torch.stack([m.mask for m in members]))
        self.register_buffer("signs", first.signs.clone())
        self.register_buffer("weight_scale", torch.stack([m.weight_scale for m in members]))
        stack = lambda get: nn.Parameter(torch.stack([get(m).detach().clone() for m in members]))
        self.weight = stack(lambda m: m.weight)
        self.input_weight = stack(lambda m: m.input_layer.weight)
        self.input_bias = stack(lambda m: m.input_layer.bias + m.bias)   # one bias per unit
        if first.readout is None:
            self.readout_weight = None
            self.readout_bias = None
            self.register_buffer("identity_readout", first.identity_readout.clone())
        else:
            self.readout_weight = stack(lambda m: m.readout.weight)
            self.readout_bias = stack(lambda m: m.readout.bias)

    @property
    def alpha(self) -> float:
        """Euler factor ``dt / tau``."""
        return self.dt / self.tau

    def recurrent_weights(self) -> torch.Tensor:
        """Effective recurrent weights of every member, shape (S, n_units, n_units) (Dale's law
        by straight-through rectification, as in :meth:`RateRNN.recurrent_weights`)."""
        w = self.weight
        if self.dale:
            w = w + (torch.relu(w) - w).detach()
            no_self = 1.0 - torch.eye(self.n_units, dtype=w.dtype)
            w = w * no_self * self.signs[None, None, :]
        return w * self.mask * self.weight_scale[:, None, None]

    def readout_matrices(self) -> torch.Tensor:
        """Effective readout weights of every member, (S, n_output, n_exc)."""
        if self.readout_weight is None:
            return self.identity_readout.expand(self.n_members, -1, -1)
        w = self.readout_weight
        if self.readout_mode == "nonnegative":
            w = w + (torch.relu(w) - w).detach()
        return w

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        S = self.n_members
        if not isinstance(u, torch.Tensor) or u.dim() != 3 or u.shape[-1] != self.n_input \
                or u.shape[1] % S:
            raise ValueError(f"u must be a tensor of shape (time, batch, {self.n_input}) with a "
                             f"batch divisible by the {S} members, got "
                             f"{tuple(u.shape) if hasattr(u, 'shape') else type(u).__name__}")
        T, B, _ = u.shape
        b = B // S
        u = u.to(self.weight.dtype).reshape(T, S, b, self.n_input)
        drive = self.alpha * (torch.einsum("tsbi,sni->tsbn", u, self.input_weight)
                              + self.input_bias[None, :, None, :])
        if self.sigma_rec > 0:
            drive = drive + math.sqrt(2.0 * self.alpha) * self.sigma_rec * torch.randn_like(drive)
        weights = self.recurrent_weights()
        keep = None
        if self.training and self.dropout > 0:
            keep = (torch.rand(S, self.n_units) >= self.dropout).to(drive.dtype) / (1.0 - self.dropout)
            weights = weights * keep[:, None, :]
        rates = EnsembleRNNFunction.apply(drive, weights, self.alpha)
        seen = rates if keep is None else rates * keep[None, :, None, :]
        outputs = torch.einsum("tsbe,soe->tsbo", seen[..., : self.n_exc], self.readout_matrices())
        if self.readout_bias is not None:
            outputs = outputs + self.readout_bias[None, :, None, :]
        return outputs.reshape(T, B, self.n_output), rates.reshape(T, B, self.n_units)

    def per_member(self, values: torch.Tensor) -> torch.Tensor:
        """Split the trial axis (axis 1) of ``values`` (time, S * b, ...) into (S, time, b, ...)."""
        S = self.n_members
        if values.dim() < 2 or values.shape[1] % S:
            raise ValueError(f"values must have a trial axis (axis 1) divisible by {S}")
        return values.reshape(values.shape[0], S, -1, *values.shape[2:]).transpose(0, 1)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Clip negative parameters to zero (Dale's law, non-negative readout) and apply the masks,
        as :meth:`RateRNN.constrain_` does for each member."""
        if self.dale:
            self.weight.clamp_(min=0.0)
        self.weight.mul_(self.mask)
        if self.readout_mode == "nonnegative":
            self.readout_weight.clamp_(min=0.0)

    @torch.no_grad()
    def member(self, k: int) -> RateRNN:
        """Member ``k`` as a stand-alone :class:`RateRNN` (a copy: training it does not change the
        ensemble), in ``eval()`` mode."""
        k = check_int("k", k, min_value=0, max_value=self.n_members - 1)
        net = copy.deepcopy(self._template[0])
        net.mask.copy_(self.mask[k])
        net.weight_scale.copy_(self.weight_scale[k])
        net.weight.copy_(self.weight[k])
        net.input_layer.weight.copy_(self.input_weight[k])
        net.input_layer.bias.copy_(self.input_bias[k])
        net.bias.zero_()
        if self.readout_weight is not None:
            net.readout.weight.copy_(self.readout_weight[k])
            net.readout.bias.copy_(self.readout_bias[k])
        net.dropout = self.dropout
        return net.eval()

    _MEMBER_NAMES = {"weight": "weight", "input_layer.weight": "input_weight",
                     "input_layer.bias": "input_bias", "readout.weight": "readout_weight",
                     "readout.bias": "readout_bias"}

    def stack_members(self, dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Stack per-member dicts named like a :class:`RateRNN`'s parameters (e.g. each member's
        Fisher diagonal from :func:`utils.learning.continual.fisher_diagonal`) into one dict named
        like the ensemble's parameters, member ``k`` from ``dicts[k]``. The member's two biases
        (``input_layer.bias`` and ``bias``) are one parameter here and always have the same gradient,
        so the entry of ``input_layer.bias`` is used."""
        if not isinstance(dicts, (list, tuple)) or len(dicts) != self.n_members:
            raise ValueError(f"dicts must be a list of {self.n_members} dicts, one per member")
        own = dict(self.named_parameters())
        out = {}
        for src, dst in self._MEMBER_NAMES.items():
            if dst not in own:
                continue
            if any(src not in d for d in dicts):
                raise ValueError(f"every dict must hold {src!r}")
            out[dst] = torch.stack([d[src] for d in dicts])
            if out[dst].shape != own[dst].shape:
                raise ValueError(f"{src!r}: expected member shape {tuple(own[dst].shape[1:])}, "
                                 f"got {tuple(out[dst].shape[1:])}")
        return out

    @torch.no_grad()
    def clip_grad_(self, max_norm: float) -> None:
        """Scale each member's gradient so that its norm (over all of its parameters) is at most
        ``max_norm``: gradient clipping per member, for use between ``backward()`` and the
        optimiser step."""
        max_norm = check_real("max_norm", max_norm, low=0.0, low_open=True)
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            return
        norms = torch.stack([g.reshape(self.n_members, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
