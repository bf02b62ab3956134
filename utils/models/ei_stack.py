"""Many E/I networks of Song, Yang & Wang (2016) trained as one: the stacked network of chapter 8.

Chapter 8 compares variants of chapter 7's network (:class:`~utils.models.ei_rate.EIRateRNN`):
other excitatory fractions, other splits of which units receive which input, more input channels,
each with several seeds: 21 networks. Instead of training them one after another, here they
are held in stacked tensors (a leading *network* axis ``K``) and run as one network, each time step
one batched matrix product (:func:`torch.baddbmm`) for all of them. The networks stay
independent: each has its own weights, masks, Dale signs, trials, loss, regulariser and gradient
clipping, and Adam's element-wise steps are the same whether the parameters sit in one tensor or
in many. The unit tests check that one stacked network gives the same outputs and gradients as
the same :class:`EIRateRNN` trained with :func:`~utils.models.ei_rate.song_update`.

The time loop has a hand-written backward pass (as :class:`~utils.models.rate.LeakyRNNFunction`)
that also adds the gradient of Pascanu's vanishing-gradient regulariser: the products
``g_t W`` the regulariser needs are the ones the backward pass computes anyway, and the loss and
regulariser gradients of ``W`` come out of one batched product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..validation import check_int, check_real
from .ei_rate import EIRateRNN, RectifiedWeights
from .rate import leaky_forward_states

__all__ = ["StackedEIRateRNN", "StackedLeakyRNNFunction", "stacked_song_update"]


class StackedLeakyRNNFunction(torch.autograd.Function):
    """``x_t = (1-a) x_{t-1} + a W_k relu(x_{t-1}) + drive_t`` for K networks at once.

    Inputs: ``drive`` (T, K, B, N) (already scaled by ``a``, noise included); ``weight``
    (K, N, N), ``weight[k, post, pre]``; ``x0`` (K, B, N); ``alpha``; ``lambda_omega`` (weight of
    Pascanu's regulariser, 0 for none); ``bound`` (steps with ``|dE/dx_t|^2 < bound`` are left
    out of the regulariser); ``record``: a list, or None, to which the backward pass appends the
    regulariser's value per network (a (K,) tensor). Output: rates (T, K, B, N).

    The backward pass returns the gradient of the loss plus ``lambda_omega`` times the gradient of
    ``Omega_k`` (see :func:`utils.models.ei_rate.vanishing_gradient_regulariser`, whose definition
    it follows network by network) in the weight's gradient.
    """

    @staticmethod
    def forward(ctx, drive: torch.Tensor, weight: torch.Tensor, x0: torch.Tensor, alpha: float,
                lambda_omega: float, bound: float, record: list | None) -> torch.Tensor:
        xs, rs = leaky_forward_states(drive, weight, x0, alpha)
        ctx.save_for_backward(weight, x0, xs, rs)
        ctx.alpha, ctx.lambda_omega, ctx.bound, ctx.record = alpha, lambda_omega, bound, record
        return rs

    @staticmethod
    def backward(ctx, grad_rs: torch.Tensor):
        # One pass backward through time. At step t it has g_{t+1} = dE/dx_{t+1} and computes
        # g_{t+1} (alpha W) once: it gives both g_t and the regulariser's back-propagated vector
        # back_{t+1} = (1-alpha) g_{t+1} + g_{t+1} (alpha W) diag(f'(x_t)), whose norms are taken
        # while the step's tensors are still in cache.
        weight, x0, xs, rs = ctx.saved_tensors
        grad_rs = grad_rs.contiguous()                # (the readout's einsum may permute it)
        alpha, lam = ctx.alpha, ctx.lambda_omega
        T, K, B, N = xs.shape
        reg = lam > 0 or ctx.record is not None
        w_a = weight * alpha                          # g (K, B, post) @ w_a -> (K, B, pre)
        gxs = torch.empty_like(xs)
        z = torch.empty_like(xs) if reg else None     # z[t] = back_t * f'(x_{t-1})
        den = xs.new_empty(T, K, B)                   # |g_t|^2
        num = xs.new_empty(T, K, B)                   # |back_t|^2
        gw = xs.new_empty(K, B, N)
        act = (xs[T - 1] > 0).to(xs.dtype)
        torch.mul(grad_rs[T - 1], act, out=gxs[T - 1])
        for t in range(T - 2, -1, -1):
            g_next = gxs[t + 1]
            act = (xs[t] > 0).to(xs.dtype)
            torch.bmm(g_next, w_a, out=gw)
            back = torch.addcmul(g_next * (1.0 - alpha), gw, act)
            torch.addcmul(back, grad_rs[t], act, out=gxs[t])
            if reg:
                torch.sum(g_next * g_next, dim=-1, out=den[t + 1])
                torch.sum(back * back, dim=-1, out=num[t + 1])
                torch.mul(back, act, out=z[t + 1])
        g0 = gxs[0]
        x0_active = (x0 > 0).to(x0.dtype)
        gw0 = torch.bmm(g0, w_a)
        coef = None
        if reg:
            back0 = torch.addcmul(g0 * (1.0 - alpha), gw0, x0_active)
            torch.sum(g0 * g0, dim=-1, out=den[0])
            torch.sum(back0 * back0, dim=-1, out=num[0])
            torch.mul(back0, x0_active, out=z[0])
            ok = den >= ctx.bound
            norm = ok.to(xs.dtype).mean(2).sum(0).clamp_min(1e-12)    # (K,)
            safe = torch.where(ok, den, torch.ones_like(den))
            dev = torch.where(ok, num / safe - 1.0, torch.zeros_like(den))
            omega = dev.pow(2).sum(dim=(0, 2)) / (B * norm)
            if ctx.record is not None:
                ctx.record.append(omega.detach())
            if lam > 0:
                coef = 4.0 * lam * dev / (safe * B * norm[None, :, None])
        grad_weight = grad_x0 = None
        if ctx.needs_input_grad[1]:
            # dE/dW = alpha sum_t g_t^T r_{t-1}; the regulariser adds alpha sum_t g_t^T (coef_t z_t)
            if coef is not None:
                rhs = z.mul_(coef[..., None])
                rhs[1:] += rs[:-1]
                rhs[0] += torch.relu(x0)
            else:
                rhs = torch.cat([torch.relu(x0)[None], rs[:-1]], dim=0)
            g_k = gxs.transpose(0, 1).reshape(K, T * B, N)
            rhs_k = rhs.transpose(0, 1).reshape(K, T * B, N)
            grad_weight = alpha * torch.bmm(g_k.transpose(1, 2), rhs_k)
        if ctx.needs_input_grad[2]:
            grad_x0 = g0 * (1.0 - alpha) + gw0 * x0_active
        return gxs, grad_weight, grad_x0, None, None, None, None


class StackedEIRateRNN(RectifiedWeights, nn.Module):
    """K independent :class:`EIRateRNN` networks held in stacked tensors and run as one.

    Args:
        networks: the networks to stack (their current weights are copied). They must share
            ``n_units``, ``n_output``, ``tau``, ``dt`` and ``sigma_rec``; excitatory fractions,
            input masks and numbers of input channels may differ. A network with fewer input
            channels than the largest gets zero-masked columns: it ignores the extra channels.

    Trained parameters (leading axis: the network): ``w_in`` (K, N, n_input), ``w_rec``
    (K, N, N), ``w_out`` (K, n_output, N), ``x0`` (K, N). ``forward(u)`` takes ``u`` of shape
    (time, K, batch, n_input) (each network its own trials) or (time, batch, n_input) (the same
    trials for all) and returns ``(outputs, rates)`` of shapes (time, K, batch, n_output) and
    (time, K, batch, N). :meth:`network` turns network ``k`` back into an :class:`EIRateRNN`.
    """

    def __init__(self, networks: Sequence[EIRateRNN]) -> None:
        super().__init__()
        networks = list(networks) if not isinstance(networks, EIRateRNN) else [networks]
        if not networks:
            raise ValueError("networks must contain at least one EIRateRNN")
        for i, net in enumerate(networks):
            if not isinstance(net, EIRateRNN):
                raise TypeError(f"networks[{i}] must be an EIRateRNN, got {type(net).__name__}")
        first = networks[0]
        for name in ("n_units", "n_output", "tau", "dt", "sigma_rec"):
            values = {getattr(net, name) for net in networks}
            if len(values) > 1:
                raise ValueError(f"the networks must share {name}, got {sorted(values)}")
        self.n_networks = len(networks)
        self.n_units, self.n_output = first.n_units, first.n_output
        self.tau, self.dt, self.sigma_rec = first.tau, first.dt, first.sigma_rec
        self.n_inputs = [net.n_input for net in networks]
        self.n_input = max(self.n_inputs)
        self.e_fracs = [net.e_frac for net in networks]
        self.n_exc = [net.n_exc for net in networks]
        n, n_in = self.n_units, self.n_input

        def pad(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t, t.new_zeros(n, n_in - t.shape[1])], dim=1)

        with torch.no_grad():
            self.register_buffer("signs", torch.stack([net.signs for net in networks]))
            self.register_buffer("in_mask", torch.stack([pad(net.in_mask) for net in networks]))
            self.register_buffer("rec_mask", first.rec_mask.clone())
            self.register_buffer("out_mask", torch.stack([net.out_mask for net in networks]))
            self.w_in = nn.Parameter(torch.stack([pad(net.w_in.detach()) for net in networks]))
            self.w_rec = nn.Parameter(torch.stack([net.w_rec.detach() for net in networks]).clone())
            self.w_out = nn.Parameter(torch.stack([net.w_out.detach() for net in networks]).clone())
            self.x0 = nn.Parameter(torch.stack([net.x0.detach() for net in networks]).clone())
        self._omega: list = []

    @property
    def alpha(self) -> float:
        """Euler factor ``dt / tau``."""
        return self.dt / self.tau

    def forward(self, u: torch.Tensor, *, lambda_omega: float = 0.0,
                bound: float = 1e-20) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (T, K, B, n_output) and rates (T, K, B, N) for inputs ``u``.

        ``u``: (T, K, B, n_input), or (T, B, n_input) shared by all networks. With
        ``lambda_omega > 0`` a later ``backward()`` adds that multiple of the regulariser's
        gradient to ``w_rec``'s (see :class:`StackedLeakyRNNFunction`); the regulariser's value
        per network is then available from :meth:`last_omega`.
        """
        if not isinstance(u, torch.Tensor) or u.dim() not in (3, 4) or u.shape[-1] != self.n_input:
            raise ValueError(f"u must be a tensor of shape (time, K, batch, {self.n_input}) or "
                             f"(time, batch, {self.n_input}), got "
                             f"{tuple(u.shape) if hasattr(u, 'shape') else type(u).__name__}")
        if u.dim() == 4 and u.shape[1] != self.n_networks:
            raise ValueError(f"u's second axis must be the {self.n_networks} networks, got {u.shape[1]}")
        lambda_omega = check_real("lambda_omega", lambda_omega, low=0.0)
        bound = check_real("bound", bound, low=0.0, low_open=True)
        alpha = self.alpha
        w_in = self.input_weights() * alpha
        if u.dim() == 4:
            drive = torch.einsum("tkbi,kni->tkbn", u, w_in)
        else:
            drive = torch.einsum("tbi,kni->tkbn", u, w_in)
        drive = drive.contiguous()
        if self.sigma_rec > 0:
            noise = torch.randn(drive.shape, dtype=drive.dtype)
            drive = torch.add(drive, noise, alpha=math.sqrt(2.0 * alpha) * self.sigma_rec)
        batch = drive.shape[2]
        x0 = self.x0[:, None, :].expand(self.n_networks, batch, self.n_units)
        self._omega = []
        rates = StackedLeakyRNNFunction.apply(drive, self.recurrent_weights(), x0, alpha,
                                              lambda_omega, bound, self._omega)
        outputs = torch.einsum("tkbn,kon->tkbo", rates, self.output_weights())
        return outputs, rates

    def last_omega(self) -> torch.Tensor:
        """The regulariser's value per network (K,) from the last ``backward()``."""
        if not self._omega:
            raise ValueError("call backward() on a loss from the model's forward pass first")
        return self._omega[-1]

    def network(self, k: int) -> EIRateRNN:
        """Network ``k`` as a stand-alone :class:`EIRateRNN` (a copy of its current weights)."""
        k = check_int("k", k, min_value=0, max_value=self.n_networks - 1)
        n_in = self.n_inputs[k]
        net = EIRateRNN(n_in, self.n_units, self.n_output, tau=self.tau, dt=self.dt,
                        e_frac=self.e_fracs[k], sigma_rec=self.sigma_rec,
                        input_mask=self.in_mask[k, :, :n_in].clone())
        with torch.no_grad():
            net.w_in.copy_(self.w_in[k, :, :n_in])
            net.w_rec.copy_(self.w_rec[k])
            net.w_out.copy_(self.w_out[k])
            net.x0.copy_(self.x0[k])
        return net

    @torch.no_grad()
    def dale_violations(self) -> list[int]:
        """:meth:`EIRateRNN.dale_violations` of every network (counted against the declared
        types: units ``0 .. n_exc-1`` excitatory, the rest inhibitory)."""
        w, w_in, w_out = self.recurrent_weights(), self.input_weights(), self.output_weights()
        counts = []
        for k in range(self.n_networks):
            declared = torch.ones(self.n_units)
            declared[self.n_exc[k]:] = -1.0
            bad = int((w[k] * declared[None, :] < 0).sum() + (torch.diagonal(w[k]) != 0).sum())
            bad += int((w_in[k] < 0).sum() + (w_out[k] < 0).sum())
            bad += int((w_out[k][:, self.n_exc[k]:] != 0).sum())
            counts.append(bad)
        return counts


def stacked_song_update(optimizer: torch.optim.Optimizer, *, lambda_omega: float = 2.0,
                        clip_grad: float = 1.0):
    """An ``update_fn`` for :func:`utils.training.train`: :func:`~utils.models.ei_rate.song_update`
    for every network of a :class:`StackedEIRateRNN` at once.

    The batch is a :class:`~utils.tasks.multisensory.MultisensoryBatch` of ``K * B`` trials:
    trials ``k*B .. k*B+B-1`` go to network ``k``. Each network's loss is its masked squared
    error (divided by its own mask's sum); the regulariser's gradient (weight ``lambda_omega``)
    is added network by network, and each network's gradient is clipped to norm ``clip_grad`` on
    its own. Channels beyond the model's ``n_input`` (the modality cues of
    :func:`~utils.tasks.multisensory_variations.cued_trials`, for a stack of five-input networks)
    are left out. Records the mean loss and the mean ``omega`` over the networks.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    lambda_omega = check_real("lambda_omega", lambda_omega, low=0.0)
    clip_grad = check_real("clip_grad", clip_grad, low=0.0, low_open=True)

    def update(model: StackedEIRateRNN, batch, step: int) -> tuple[float, dict[str, float]]:
        if not isinstance(model, StackedEIRateRNN):
            raise TypeError(f"model must be a StackedEIRateRNN, got {type(model).__name__}")
        K = model.n_networks
        T, n_trials = batch.inputs.shape[:2]
        if n_trials % K:
            raise ValueError(f"the batch's {n_trials} trials do not split evenly over {K} networks")
        split = (T, K, n_trials // K)
        if batch.inputs.shape[-1] < model.n_input:
            raise ValueError(f"the batch has {batch.inputs.shape[-1]} input channels, the model "
                             f"{model.n_input}")
        inputs = batch.inputs[..., :model.n_input]       # a five-input stack ignores the cues
        outputs, _ = model(inputs.reshape(*split, -1), lambda_omega=lambda_omega)
        targets = batch.targets.reshape(*split, -1)
        mask = batch.mask.reshape(*split, -1)
        per_net = (((outputs - targets) ** 2 * mask).sum(dim=(0, 2, 3))
                   / mask.sum(dim=(0, 2, 3)).clamp_min(1.0))
        optimizer.zero_grad(set_to_none=True)
        per_net.sum().backward()
        omega = model.last_omega()
        with torch.no_grad():
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            norm = torch.stack([g.pow(2).reshape(K, -1).sum(1) for g in grads]).sum(0).sqrt()
            scale = (clip_grad / (norm + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(scale.reshape(K, *([1] * (g.dim() - 1))))
        optimizer.step()
        return float(per_net.mean().detach()), {"omega": float(omega.mean())}

    return update
