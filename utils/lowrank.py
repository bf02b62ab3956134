"""Low-rank recurrent networks (Part IV, after Dubreuil et al. 2022 and Mastrogiuseppe & Ostojic 2018).

The network has ``N`` rate units with pre-activations ``x`` and the dynamics

.. math::

    \\tau \\frac{dx_i}{dt} = -x_i + \\sum_j J_{ij}\\,\\phi(x_j) + I_i u(t), \\qquad
    J = \\frac{1}{N} m n^T, \\qquad \\phi = \\tanh,

discretised with forward Euler (``alpha = dt / tau``), and the readout
``z(t) = (1/N) sum_i w_i phi(x_i(t))``. The left and right connectivity vectors ``m`` and ``n``
(shape (N, R)) are trained; the input vectors ``I`` (N, n_inputs) and the readout ``w`` (N,) are
fixed.

Why it is fast: starting from ``x = 0``, the state always lies in the span of the columns of ``m``
and ``I``: ``x_t = m K_t + I V_t``. ``V`` is the input low-pass filtered with the time constant
``tau`` (computed once for all steps), and only the R latent numbers ``K`` per trial are updated
step by step: ``K_{t+1} = (1 - alpha) K_t + alpha kappa_t`` with ``kappa_t = n^T phi(x_t) / N``.
The ``N x N`` matrix ``J`` is never formed; a step costs O(N R B). The time loop runs inside
:class:`LowRankFunction`, whose backward pass is written by hand (checked with
:func:`torch.autograd.gradcheck` in the tests).

Tensors are time-major like the rest of :mod:`utils`: inputs (T, B, n_inputs), outputs (T, B).

Tasks (sheet of seed 004): :func:`decision_batch` (perceptual decision making, section 2) and
:func:`working_memory_batch` (parametric working memory, section 3).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .training import History
from .validation import check_bool, check_choice, check_int, check_real, check_tensor_shape

__all__ = [
    "DECISION_STRENGTHS",
    "WM_FREQUENCIES",
    "decision_batch",
    "working_memory_batch",
    "LowRankFunction",
    "LowRankRNN",
    "lowrank_loss",
    "sign_accuracy",
    "evaluate_lowrank",
    "train_lowrank",
    "connectivity_matrix",
    "connectivity_labels",
    "fit_gaussian",
    "resample",
    "latents",
]

#: The ten stimulus strengths of the decision task: +-3.2/100 * {1, 2, 4, 8, 16}.
DECISION_STRENGTHS: tuple[float, ...] = tuple(
    s * 3.2 / 100.0 * c for s in (-1.0, 1.0) for c in (1, 2, 4, 8, 16))

#: The seven frequencies of the working-memory task (Hz, as in Romo et al.'s vibrotactile task).
WM_FREQUENCIES: tuple[float, ...] = (10.0, 14.0, 18.0, 22.0, 26.0, 30.0, 34.0)


def _check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


# --- tasks --------------------------------------------------------------------------------------

def decision_batch(batch_size: int, *, strengths: Sequence[float] | torch.Tensor | None = None,
                   noise_std: float = 0.03, n_steps: int = 75, stim_on: int = 5, stim_off: int = 45,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A batch of perceptual-decision trials (seed 004, section 2, step 1).

    ``u(t) = ubar + xi(t)`` for ``stim_on <= t <= stim_off`` (both ends included) and ``xi(t)``
    otherwise, with white noise ``xi ~ N(0, noise_std^2)`` drawn anew at every step. Each trial's
    strength ``ubar`` is drawn uniformly from :data:`DECISION_STRENGTHS` (or from ``strengths``);
    the target is its sign.

    Args:
        batch_size: number of trials B (>= 1).
        strengths: the set of strengths to draw from (default :data:`DECISION_STRENGTHS`); no zero
            strength, its sign would be undefined.
        noise_std: standard deviation of the input noise per step (>= 0).
        n_steps: trial length T in steps (75 steps of 20 ms = 1.5 s).
        stim_on, stim_off: first and last step of the stimulus, ``0 <= stim_on <= stim_off < n_steps``.
        generator: a seeded ``torch.Generator`` for reproducible batches.

    Returns:
        dict with ``inputs`` (T, B, 1), ``targets`` (B,) in {-1, +1} and ``strengths`` (B,).
    """
    batch_size = check_int("batch_size", batch_size, min_value=1)
    noise_std = check_real("noise_std", noise_std, low=0.0)
    n_steps = check_int("n_steps", n_steps, min_value=1)
    stim_on = check_int("stim_on", stim_on, min_value=0, max_value=n_steps - 1)
    stim_off = check_int("stim_off", stim_off, min_value=stim_on, max_value=n_steps - 1)
    _check_generator(generator)
    if strengths is None:
        strengths = DECISION_STRENGTHS
    levels = torch.as_tensor(strengths, dtype=torch.float32).flatten()
    if levels.numel() == 0 or not torch.isfinite(levels).all() or (levels == 0).any():
        raise ValueError(f"strengths must be a non-empty list of finite, non-zero numbers, got {strengths!r}")
    ubar = levels[torch.randint(levels.numel(), (batch_size,), generator=generator)]
    inputs = noise_std * torch.randn(n_steps, batch_size, 1, generator=generator)
    inputs[stim_on:stim_off + 1, :, 0] += ubar
    return {"inputs": inputs, "targets": torch.sign(ubar), "strengths": ubar}


def working_memory_batch(batch_size: int, *, frequencies: Sequence[float] = WM_FREQUENCIES,
                         u1_on: int = 5, u1_off: int = 10, u2_on: int = 60, u2_off: int = 70,
                         n_decision: int = 5, generator: torch.Generator | None = None
                         ) -> dict[str, torch.Tensor]:
    """A batch of parametric working-memory trials (seed 004, section 3, step 1).

    ``u(t) = u1`` for ``u1_on <= t <= u1_off``, ``u2`` for ``u2_on <= t <= u2_off`` and 0
    otherwise, with ``u_i = (f_i - (fmax + fmin)/2) / (fmax - fmin)`` and ``f1``, ``f2`` drawn
    independently and uniformly from ``frequencies``. The target is
    ``(f1 - f2) / (fmax - fmin)``, to be reported in the ``n_decision`` steps that follow the
    second stimulus; the trial has ``u2_off + 1 + n_decision`` steps (76 with the defaults, so
    the last 5 steps are exactly the decision epoch). No noise is added, as in the sheet.

    For a delay curriculum, move the second stimulus earlier, e.g. ``u2_on=36, u2_off=46``
    (a delay of 25 steps after ``u1_off``).

    Returns:
        dict with ``inputs`` (T, B, 1), ``targets`` (B,), ``f1`` (B,), ``f2`` (B,) and the
        normalised stimuli ``u1`` (B,), ``u2`` (B,).
    """
    batch_size = check_int("batch_size", batch_size, min_value=1)
    freqs = torch.as_tensor(frequencies, dtype=torch.float32).flatten()
    if freqs.numel() < 2 or not torch.isfinite(freqs).all() or freqs.max() == freqs.min():
        raise ValueError(f"frequencies must hold at least two different finite numbers, got {frequencies!r}")
    u1_on = check_int("u1_on", u1_on, min_value=0)
    u1_off = check_int("u1_off", u1_off, min_value=u1_on)
    u2_on = check_int("u2_on", u2_on, min_value=u1_off + 1)
    u2_off = check_int("u2_off", u2_off, min_value=u2_on)
    n_decision = check_int("n_decision", n_decision, min_value=1)
    _check_generator(generator)
    fmin, fmax = float(freqs.min()), float(freqs.max())
    f1 = freqs[torch.randint(freqs.numel(), (batch_size,), generator=generator)]
    f2 = freqs[torch.randint(freqs.numel(), (batch_size,), generator=generator)]
    u1 = (f1 - (fmax + fmin) / 2) / (fmax - fmin)
    u2 = (f2 - (fmax + fmin) / 2) / (fmax - fmin)
    n_steps = u2_off + 1 + n_decision
    inputs = torch.zeros(n_steps, batch_size, 1)
    inputs[u1_on:u1_off + 1, :, 0] = u1
    inputs[u2_on:u2_off + 1, :, 0] = u2
    return {"inputs": inputs, "targets": (f1 - f2) / (fmax - fmin), "f1": f1, "f2": f2,
            "u1": u1, "u2": u2}


# --- the network ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _one_thread():
    """Run the time loop on one thread. Each step works on a small (B, N) tensor; splitting such
    tensors over threads costs more in synchronisation than it gains (on a busy 2-core machine a
    2-thread ``tanh`` of 32 x 128 numbers was measured at 17 ms against 7 us on one thread)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class LowRankFunction(torch.autograd.Function):
    """The latent time loop of a low-rank tanh network, with a hand-written backward pass.

    Inputs: ``drive`` (T, B, N), the input part of the state at each step (``I V_{t+1}``);
    ``m``, ``n`` (N, R); ``alpha`` (float). With ``K_0 = 0`` and ``kappa_0 = 0``, for t = 0..T-1::

        K_{t+1} = (1 - alpha) K_t + alpha kappa_t
        r_{t+1} = tanh(drive_t + K_{t+1} m^T)
        kappa_{t+1} = r_{t+1} n / N

    Outputs: rates ``r`` (T, B, N) and latents ``K`` (T, B, R) (entry t belongs to step t+1).
    """

    @staticmethod
    def forward(ctx, drive: torch.Tensor, m: torch.Tensor, n: torch.Tensor,
                alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, N = drive.shape
        R = m.shape[1]
        rs = torch.empty_like(drive)
        ks = drive.new_empty(T, B, R)
        m_t = m.t().contiguous()
        n_scaled = n * (alpha / N)  # alpha * kappa, directly
        k = drive.new_zeros(B, R)
        a_kappa = drive.new_zeros(B, R)
        with _one_thread():
            for t in range(T):
                k = torch.add(a_kappa, k, alpha=1.0 - alpha, out=ks[t])
                r = torch.tanh(torch.addmm(drive[t], k, m_t), out=rs[t])
                a_kappa = torch.mm(r, n_scaled)
        ctx.save_for_backward(m, n, rs, ks)
        ctx.alpha = alpha
        return rs, ks

    @staticmethod
    def backward(ctx, grad_rs: torch.Tensor, grad_ks: torch.Tensor):
        m, n, rs, ks = ctx.saved_tensors
        alpha = ctx.alpha
        T, B, N = rs.shape
        R = m.shape[1]
        if grad_rs is None:
            grad_rs = torch.zeros_like(rs)
        if grad_ks is None:
            grad_ks = torch.zeros_like(ks)
        dphi = 1.0 - rs * rs
        n_t = (n * (alpha / N)).t().contiguous()  # from g(K_{t+2}) to g(r_{t+1})
        gxs = torch.empty_like(rs)
        gks = rs.new_empty(T, B, R)
        gk_next = rs.new_zeros(B, R)  # gradient w.r.t. K_{t+2}
        with _one_thread():
            for t in range(T - 1, -1, -1):
                gr = torch.addmm(grad_rs[t], gk_next, n_t)
                gx = torch.mul(gr, dphi[t], out=gxs[t])
                gk_next = torch.addmm(grad_ks[t], gx, m, out=gks[t]).add_(gk_next, alpha=1.0 - alpha)
        grad_drive = gxs if ctx.needs_input_grad[0] else None
        grad_m = grad_n = None
        if ctx.needs_input_grad[1]:
            grad_m = gxs.reshape(-1, N).t() @ ks.reshape(-1, R)
        if ctx.needs_input_grad[2]:
            # kappa_{t+1} = r_{t+1} n / N feeds K_{t+2}; the last step's kappa is unused.
            grad_n = (alpha / N) * (rs[:-1].reshape(-1, N).t() @ gks[1:].reshape(-1, R))
        return grad_drive, grad_m, grad_n, None


class LowRankRNN(nn.Module):
    """Rank-R tanh network with fixed input and readout vectors (seed 004; Dubreuil et al. 2022).

    Args:
        n_units: number of units N (>= 2).
        rank: rank R of ``J = m n^T / N`` (>= 1).
        n_inputs: number of input channels (columns of ``I``).
        tau: neuronal time constant (ms). dt: Euler step (ms), ``0 < dt <= tau``.
        w_std: standard deviation of the fixed readout vector ``w``. 4.0 is the scale used in
            Dubreuil et al.'s code; 1.0 is the sheet's literal N(0, 1), with which
            ``|z| <= (1/N) sum_i |w_i| ~ E|w| = 0.80`` and targets of +-1 cannot be reached.
        seed: seed of the initial ``m``, ``n`` and of the fixed ``I`` and ``w``.

    Parameters ``m``, ``n`` (N, R) are trained; buffers ``I`` (N, n_inputs) and ``w`` (N,) are
    fixed. All are drawn from N(0, 1), except ``w`` from N(0, w_std^2).

    ``forward(u)`` takes inputs (T, B, n_inputs) and returns ``(z, x)``: the readout (T, B) and
    the pre-activations (T, B, N) after each Euler step (the state starts at ``x = 0``; step t
    uses input ``u[t]``).
    """

    def __init__(self, n_units: int = 128, rank: int = 1, n_inputs: int = 1, *, tau: float = 100.0,
                 dt: float = 20.0, w_std: float = 4.0, seed: int = 0) -> None:
        super().__init__()
        self.n_units = check_int("n_units", n_units, min_value=2)
        self.rank = check_int("rank", rank, min_value=1, max_value=self.n_units)
        self.n_inputs = check_int("n_inputs", n_inputs, min_value=1)
        self.tau = check_real("tau", tau, low=0.0, low_open=True)
        self.dt = check_real("dt", dt, low=0.0, low_open=True)
        if self.dt > self.tau:
            raise ValueError(f"dt must satisfy 0 < dt <= tau (forward Euler is unstable beyond), "
                             f"got dt={self.dt:g} > tau={self.tau:g}")
        self.w_std = check_real("w_std", w_std, low=0.0, low_open=True)
        seed = check_int("seed", seed, min_value=0, max_value=2**63 - 1)
        g = torch.Generator().manual_seed(seed)
        N, R = self.n_units, self.rank
        self.m = nn.Parameter(torch.randn(N, R, generator=g))
        self.n = nn.Parameter(torch.randn(N, R, generator=g))
        self.register_buffer("I", torch.randn(N, self.n_inputs, generator=g))
        self.register_buffer("w", self.w_std * torch.randn(N, generator=g))

    @property
    def alpha(self) -> float:
        """Euler factor ``dt / tau``."""
        return self.dt / self.tau

    def extra_repr(self) -> str:
        return (f"n_units={self.n_units}, rank={self.rank}, n_inputs={self.n_inputs}, "
                f"tau={self.tau:g}, dt={self.dt:g}, w_std={self.w_std:g}")

    def recurrent_weights(self) -> torch.Tensor:
        """The full matrix ``J = m n^T / N`` (N, N), for inspection only; the dynamics never form it."""
        return self.m @ self.n.t() / self.n_units

    def _check_u(self, u: Any) -> torch.Tensor:
        if not isinstance(u, torch.Tensor) or u.dim() != 3 or u.shape[-1] != self.n_inputs:
            got = tuple(u.shape) if hasattr(u, "shape") else type(u).__name__
            raise ValueError(f"u must be a tensor of shape (time, batch, {self.n_inputs}), got {got}")
        if u.shape[0] < 1 or u.shape[1] < 1:
            raise ValueError(f"u must have at least one time step and one trial, got {tuple(u.shape)}")
        return u.to(self.m.dtype)

    def filtered_input(self, u: torch.Tensor) -> torch.Tensor:
        """``V`` (T, B, n_inputs): the input low-passed with ``tau`` (``V_{t+1} = (1-a) V_t + a u_t``).

        Entry t is the value after step t, matching the states returned by :meth:`forward`.
        """
        u = self._check_u(u)
        T, a = u.shape[0], self.alpha
        idx = torch.arange(T)
        lag = (idx[:, None] - idx[None, :]).to(u.dtype)
        kernel = torch.where(lag >= 0, a * (1.0 - a) ** lag.clamp(min=0), torch.zeros_like(lag))
        return torch.einsum("ts,sbi->tbi", kernel, u)

    def simulate(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network and return every quantity: ``z`` (T, B), ``x`` and ``r`` (T, B, N),
        the exact latent coordinates ``K`` (T, B, R) and ``v`` (T, B, n_inputs) with
        ``x = K m^T + v I^T``."""
        v = self.filtered_input(u)
        drive = v @ self.I.t()
        rs, ks = LowRankFunction.apply(drive, self.m, self.n, self.alpha)
        x = drive + ks @ self.m.t()
        z = rs @ self.w / self.n_units
        return {"z": z, "x": x, "r": rs, "K": ks, "v": v}

    def output(self, u: torch.Tensor) -> torch.Tensor:
        """Only the readout ``z`` (T, B): skips building the (T, B, N) states of :meth:`forward`."""
        v = self.filtered_input(u)
        rs, _ = LowRankFunction.apply(v @ self.I.t(), self.m, self.n, self.alpha)
        return rs @ self.w / self.n_units

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.filtered_input(u)
        drive = v @ self.I.t()
        rs, ks = LowRankFunction.apply(drive, self.m, self.n, self.alpha)
        z = rs @ self.w / self.n_units
        return z, drive + ks @ self.m.t()

    def step(self, x: torch.Tensor, u_t: torch.Tensor) -> torch.Tensor:
        """One plain Euler step ``x + alpha (-x + J tanh(x) + I u_t)`` for states x (B, N), u_t (B, n_inputs).

        The reference for the lab's forward pass and for the tests; :meth:`forward` is faster.
        """
        check_tensor_shape("x", x, (None, self.n_units))
        check_tensor_shape("u_t", u_t, (x.shape[0], self.n_inputs))
        kappa = torch.tanh(x) @ self.n / self.n_units
        return x + self.alpha * (-x + kappa @ self.m.t() + u_t @ self.I.t())


# --- loss, evaluation, training ------------------------------------------------------------------

def _check_batch(batch: Any) -> None:
    if not isinstance(batch, dict) or "inputs" not in batch or "targets" not in batch:
        raise TypeError("batch must be a dict with 'inputs' (T, B, n_inputs) and 'targets' (B,), "
                        "as returned by decision_batch or working_memory_batch")


def lowrank_loss(z: torch.Tensor, targets: torch.Tensor, loss_steps: int = 15) -> torch.Tensor:
    """Mean squared error between the readout ``z`` (T, B) and ``targets`` (B,) over the last
    ``loss_steps`` steps (the sheet's decision epoch)."""
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError(f"z must be a tensor of shape (time, batch), got "
                         f"{tuple(z.shape) if hasattr(z, 'shape') else type(z).__name__}")
    check_tensor_shape("targets", targets, (z.shape[1],))
    loss_steps = check_int("loss_steps", loss_steps, min_value=1, max_value=z.shape[0])
    return (z[-loss_steps:] - targets.to(z.dtype)[None]).pow(2).mean()


def sign_accuracy(z: torch.Tensor, targets: torch.Tensor, loss_steps: int = 15) -> float:
    """Fraction of trials whose mean readout over the last ``loss_steps`` steps has the sign of
    the target. Trials with a zero target (equal stimuli) have no correct sign and are skipped."""
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError("z must be a tensor of shape (time, batch)")
    check_tensor_shape("targets", targets, (z.shape[1],))
    loss_steps = check_int("loss_steps", loss_steps, min_value=1, max_value=z.shape[0])
    keep = targets != 0
    if not keep.any():
        raise ValueError("targets must contain at least one non-zero value to measure a sign accuracy")
    decision = z[-loss_steps:].mean(0)
    return (torch.sign(decision[keep]) == torch.sign(targets[keep])).float().mean().item()


@torch.no_grad()
def evaluate_lowrank(model: nn.Module, batch: dict[str, torch.Tensor], loss_steps: int = 15,
                     chunk: int = 250) -> dict[str, float]:
    """Loss and sign accuracy of ``model`` on ``batch`` (no gradients): ``{"loss", "accuracy"}``.

    Trials are run ``chunk`` at a time on one thread, so that large held-out sets of large
    networks need little memory.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_batch(batch)
    chunk = check_int("chunk", chunk, min_value=1)
    model.eval()
    parts = []
    with _one_thread():
        for start in range(0, batch["inputs"].shape[1], chunk):
            u = batch["inputs"][:, start:start + chunk]
            parts.append(model.output(u) if isinstance(model, LowRankRNN) else model(u)[0])
    z = torch.cat(parts, dim=1)
    return {"loss": lowrank_loss(z, batch["targets"], loss_steps).item(),
            "accuracy": sign_accuracy(z, batch["targets"], loss_steps)}


def train_lowrank(model: nn.Module, batch_fn: Callable[[], dict[str, torch.Tensor]], n_updates: int,
                  *, lr: float = 5e-3, loss_steps: int = 15, target_loss: float | None = None,
                  window: int = 10, history: History | None = None, progress: bool = True,
                  desc: str = "training") -> History:
    """Train ``model`` with Adam on the MSE over the last ``loss_steps`` steps (seed 004, step 3).

    Args:
        model: a :class:`LowRankRNN` (any module whose forward returns ``(z (T, B), states)``).
        batch_fn: called once per update; returns a batch dict (``inputs``, ``targets``).
        n_updates: maximum number of updates (>= 1).
        lr: Adam's learning rate (the sheet's 5e-3).
        loss_steps: number of final steps in the loss.
        target_loss: if given, stop as soon as the mean training loss of the last ``window``
            updates is below it.
        window: length of that running mean.
        history: continue an existing history.
        progress: show a tqdm progress bar.

    Returns:
        a :class:`utils.training.History` with ``loss`` and ``accuracy`` per update and
        ``seconds`` (wall-clock time since the start); ``history.stopped_at`` is the number of
        updates done.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(batch_fn):
        raise TypeError("batch_fn must be callable and return a batch dict")
    n_updates = check_int("n_updates", n_updates, min_value=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    loss_steps = check_int("loss_steps", loss_steps, min_value=1)
    if target_loss is not None:
        target_loss = check_real("target_loss", target_loss, low=0.0, low_open=True)
    window = check_int("window", window, min_value=1)
    check_bool("progress", progress)
    history = History() if history is None else history
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(n_updates), desc=desc, disable=not progress, leave=True, mininterval=0.5)
    done = 0
    with _one_thread():  # every tensor here is small; see _one_thread
        done = _train_loop(model, batch_fn, optimizer, bar, history, start, loss_steps,
                           target_loss, window, n_updates, progress)
    bar.close()
    history.stopped_at = done  # type: ignore[attr-defined]
    model.eval()
    return history


def _train_loop(model, batch_fn, optimizer, bar, history, start, loss_steps, target_loss, window,
                n_updates, progress) -> int:
    done = 0
    for step in bar:
        batch = batch_fn()
        _check_batch(batch)
        z, _ = model(batch["inputs"])
        loss = lowrank_loss(z, batch["targets"], loss_steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        acc = sign_accuracy(z.detach(), batch["targets"], loss_steps) \
            if bool((batch["targets"] != 0).any()) else float("nan")
        history.append(loss=loss.item(), accuracy=acc, seconds=time.perf_counter() - start)
        running = history.last("loss", min(window, len(history)))
        if progress and (step % 10 == 0 or step == n_updates - 1):
            bar.set_postfix(loss=f"{running:.3g}")
        if target_loss is not None and len(history) >= window and running < target_loss:
            break
    return done


# --- connectivity statistics -------------------------------------------------------------------

def _check_model(model: Any) -> None:
    if not isinstance(model, LowRankRNN):
        raise TypeError(f"model must be a LowRankRNN, got {type(model).__name__}")


def connectivity_labels(model: LowRankRNN) -> list[str]:
    """Names of the columns of :func:`connectivity_matrix`, e.g. ``['m', 'n', 'I', 'w']``."""
    _check_model(model)
    R, K = model.rank, model.n_inputs
    sub = (lambda name, i, k: f"{name}{i + 1}" if k > 1 else name)
    return ([sub("m", r, R) for r in range(R)] + [sub("n", r, R) for r in range(R)]
            + [sub("I", i, K) for i in range(K)] + ["w"])


@torch.no_grad()
def connectivity_matrix(model: LowRankRNN) -> torch.Tensor:
    """Every unit's connectivity loadings, shape (N, 2R + n_inputs + 1).

    Columns ``[m_1..m_R, n_1..n_R, I_1..I_K, w]`` (see :func:`connectivity_labels`): row i is
    unit i's point in the "connectivity space" whose statistics the theory uses.
    """
    _check_model(model)
    return torch.cat([model.m, model.n, model.I, model.w[:, None]], dim=1).detach().clone()


@torch.no_grad()
def fit_gaussian(model: LowRankRNN) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of the rows of :func:`connectivity_matrix` (float64).

    The covariance is the unbiased sample covariance over the N units.
    """
    loadings = connectivity_matrix(model).double()
    mean = loadings.mean(0)
    centred = loadings - mean
    cov = centred.t() @ centred / (loadings.shape[0] - 1)
    return mean, cov


@torch.no_grad()
def resample(model: LowRankRNN, *, n_units: int | None = None, seed: int = 0,
             mean: torch.Tensor | None = None, cov: torch.Tensor | None = None) -> LowRankRNN:
    """A new network whose units are drawn from the Gaussian fitted to ``model``'s units.

    Args:
        model: the trained network.
        n_units: size of the new network (default: the same N).
        seed: seed of the draw.
        mean, cov: use this Gaussian instead of :func:`fit_gaussian` ``(model)``; shapes (D,)
            and (D, D) with ``D = 2R + n_inputs + 1``.

    Returns:
        a :class:`LowRankRNN` with the same rank, inputs, tau, dt and ``w_std`` whose
        ``m, n, I, w`` are i.i.d. draws of that Gaussian, one per unit.
    """
    _check_model(model)
    n_units = model.n_units if n_units is None else check_int("n_units", n_units, min_value=2)
    seed = check_int("seed", seed, min_value=0, max_value=2**63 - 1)
    fit_mean, fit_cov = fit_gaussian(model)
    D = fit_mean.numel()
    mean = fit_mean if mean is None else torch.as_tensor(mean, dtype=torch.float64)
    cov = fit_cov if cov is None else torch.as_tensor(cov, dtype=torch.float64)
    check_tensor_shape("mean", mean, (D,))
    check_tensor_shape("cov", cov, (D, D))
    if not torch.allclose(cov, cov.t(), atol=1e-8):
        raise ValueError("cov must be a symmetric matrix")
    # a symmetric square root that tolerates (numerically) singular covariances
    evals, evecs = torch.linalg.eigh(cov)
    if evals.min() < -1e-8 * max(1.0, float(evals.abs().max())):
        raise ValueError(f"cov must be positive semi-definite, smallest eigenvalue {evals.min():.3g}")
    root = evecs * evals.clamp(min=0.0).sqrt()
    g = torch.Generator().manual_seed(seed)
    draws = mean + torch.randn(n_units, D, generator=g, dtype=torch.float64) @ root.t()
    new = LowRankRNN(n_units, model.rank, model.n_inputs, tau=model.tau, dt=model.dt,
                     w_std=model.w_std, seed=seed)
    R, K = model.rank, model.n_inputs
    draws = draws.to(model.m.dtype)
    new.m.copy_(draws[:, :R])
    new.n.copy_(draws[:, R:2 * R])
    new.I.copy_(draws[:, 2 * R:2 * R + K])
    new.w.copy_(draws[:, -1])
    new.eval()
    return new


def latents(model: LowRankRNN, x: torch.Tensor, *, method: str = "projection") -> torch.Tensor:
    """Latent variables ``kappa`` (T, B, R) of the states ``x`` (T, B, N).

    ``method="projection"`` (the sheet's definition): ``kappa_r = x . m_r / |m_r|^2``.
    ``method="exact"``: the coordinates on the ``m_r`` in the least-squares decomposition
    ``x = sum_r kappa_r m_r + sum_k v_k I_k``; with ``x`` from :meth:`LowRankRNN.forward` it
    returns the network's own latents ``K`` exactly. The two agree up to the (small, of order
    1/sqrt(N)) overlaps between ``m`` and ``I``.
    """
    _check_model(model)
    check_choice("method", method, ["projection", "exact"])
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != model.n_units:
        raise ValueError(f"x must be a tensor of shape (time, batch, {model.n_units}), got "
                         f"{tuple(x.shape) if hasattr(x, 'shape') else type(x).__name__}")
    with torch.no_grad():
        m = model.m.detach().to(x.dtype)
        if method == "projection":
            return x @ m / (m * m).sum(0)
        basis = torch.cat([m, model.I.to(x.dtype)], dim=1)  # (N, R + K)
        coords = torch.linalg.lstsq(basis, x.reshape(-1, x.shape[-1]).t()).solution
        return coords[: model.rank].t().reshape(*x.shape[:2], model.rank)
