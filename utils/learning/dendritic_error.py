"""A toy of the dendritic error model (Sacramento et al. 2018), in its steady-state rate form
(chapter 3).

Three populations: hidden **pyramidal** cells with a basal and an apical dendrite, one
**interneuron** per output unit in the hidden area, and linear **output** pyramidal cells.
For an input ``x`` the network settles (fixed-point iteration) to

.. math::

    v^B = W^{hx} x,\\qquad v^A = B\\,u^{out} - W^{hi}\\,u^{int},\\qquad
    u^h = v^B + g_A\\,v^A,\\qquad r^h = \\tanh(u^h),

    u^{out} = (1-\\lambda)\\,W^{oh} r^h + \\lambda\\,y^* \\;\\;(\\lambda = 0 \\text{ without a target}),
    \\qquad u^{int} = (1-\\lambda_I)\\,W^{ih} r^h + \\lambda_I\\,u^{out}.

The output soma is **nudged** towards the target ``y*``; the interneurons are nudged towards the
output cells they sit next to, so that they learn to predict them. Every weight then changes by
a local rule, postsynaptic "soma minus dendritic prediction" times presynaptic rate:

- output: ``dW_oh ∝ (u_out - W_oh r_h) r_h^T``;
- hidden basal: ``dW_hx ∝ (r_h - tanh(v_B)) x^T`` (somatic rate minus the rate the basal dendrite
  alone predicts: non-zero only through the apical input);
- interneurons: ``dW_ih ∝ (u_int - W_ih r_h) r_h^T``;
- interneuron-to-apical: ``dW_hi ∝ v_A u_int^T`` (drives the apical potential to zero).

``B`` (output to apical, top-down) stays fixed and random. Once the interneurons predict the
output (``W_ih ≈ W_oh``) and cancel the top-down input (``W_hi ≈ B``), the apical potential is zero
without a target; with a target it is about ``λ (1 - λ_I) B (y* - ŷ)``: a feedback-alignment error, held in
the dendrite, with no separate backward pass. That is the "self-predicting state"
(:meth:`DendriticErrorNet.learn_self_prediction`), after which :meth:`DendriticErrorNet.learn`
trains the task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from typing import Any

import torch

from ..training.loop import History, train
from ..validation import check_int, check_real, check_tensor_shape
from .feedback_alignment import angle_between

__all__ = ["DendriticErrorNet", "SettledState"]


@dataclass
class SettledState:
    """The steady state of :class:`DendriticErrorNet` for one batch (all tensors (batch, n))."""

    basal: torch.Tensor        # v_B, hidden basal potential
    apical: torch.Tensor       # v_A, hidden apical potential
    hidden: torch.Tensor       # r_h = tanh(v_B + g_A v_A)
    output: torch.Tensor       # u_out, nudged output potential
    prediction: torch.Tensor   # W_oh r_h, the output the network itself predicts
    interneuron: torch.Tensor  # u_int
    iterations: int            # fixed-point iterations used


class DendriticErrorNet:
    """Input -> hidden pyramidal cells (+ interneurons) -> linear output, learning with local rules.

    Args:
        n_input, n_hidden, n_output: layer sizes.
        apical_gain: ``g_A``, how strongly the apical potential moves the soma (small: the hidden
            layer is hardly perturbed and its rate change is proportional to the error).
        nudging: ``λ``, how far a target pulls the output soma (0 < λ < 1).
        interneuron_nudging: ``λ_I``, how far the output pulls the interneurons.
        seed: seed of every initial weight and of ``B``.
    """

    def __init__(self, n_input: int, n_hidden: int, n_output: int, *, apical_gain: float = 0.2,
                 nudging: float = 0.1, interneuron_nudging: float = 0.5, seed: int = 0) -> None:
        self.n_input = check_int("n_input", n_input, min_value=1)
        self.n_hidden = check_int("n_hidden", n_hidden, min_value=1)
        self.n_output = check_int("n_output", n_output, min_value=1)
        self.apical_gain = check_real("apical_gain", apical_gain, low=0.0, low_open=True, high=1.0)
        self.nudging = check_real("nudging", nudging, low=0.0, low_open=True, high=1.0, high_open=True)
        self.interneuron_nudging = check_real("interneuron_nudging", interneuron_nudging, low=0.0,
                                              low_open=True, high=1.0, high_open=True)
        seed = check_int("seed", seed, min_value=0)
        gen = torch.Generator().manual_seed(seed)

        def init(n_out: int, n_in: int) -> torch.Tensor:
            return torch.randn(n_out, n_in, generator=gen) / math.sqrt(n_in)

        self.w_hx = init(n_hidden, n_input)    # input -> hidden basal
        self.w_oh = init(n_output, n_hidden)   # hidden -> output
        self.w_ih = init(n_output, n_hidden)   # hidden -> interneurons
        self.w_hi = init(n_hidden, n_output)   # interneurons -> hidden apical
        self.b = init(n_hidden, n_output)      # output -> hidden apical (fixed)

    # --- dynamics ---------------------------------------------------------------------------------

    def settle(self, x: torch.Tensor, target: torch.Tensor | None = None, *, max_iter: int = 100,
               tol: float = 1e-6) -> SettledState:
        """Iterate the network to its steady state for inputs ``x`` (batch, n_input), nudged
        towards ``target`` (batch, n_output) if given."""
        check_tensor_shape("x", x, (None, self.n_input))
        if target is not None:
            check_tensor_shape("target", target, (x.shape[0], self.n_output))
        max_iter = check_int("max_iter", max_iter, min_value=1)
        lam = self.nudging if target is not None else 0.0
        v_b = x @ self.w_hx.t()
        r_h = torch.tanh(v_b)
        for it in range(1, max_iter + 1):
            v_a = self._around(r_h, target, lam)[3]
            r_new = torch.tanh(v_b + self.apical_gain * v_a)
            change = float((r_new - r_h).abs().max())
            r_h = r_new
            if change < tol:
                break
        pred, u_out, u_int, v_a = self._around(r_h, target, lam)
        return SettledState(v_b, v_a, r_h, u_out, pred, u_int, it)

    def _around(self, r_h: torch.Tensor, target: torch.Tensor | None, lam: float):
        """Given the hidden rates: the output's own prediction, the (nudged) output, the
        interneurons and the hidden cells' apical potential."""
        pred = r_h @ self.w_oh.t()
        u_out = pred if target is None else (1 - lam) * pred + lam * target
        lam_i = self.interneuron_nudging
        u_int = (1 - lam_i) * (r_h @ self.w_ih.t()) + lam_i * u_out
        v_a = u_out @ self.b.t() - u_int @ self.w_hi.t()
        return pred, u_out, u_int, v_a

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output for inputs ``x`` without a target."""
        return self.settle(x).prediction

    def apical_error_proxy(self, state: SettledState, target: torch.Tensor) -> torch.Tensor:
        """``λ (1 - λ_I) B (y* - ŷ)``: the feedback-alignment error that the apical potential carries
        in the self-predicting state (the interneurons pass on the fraction ``1 - λ_I`` of it)."""
        return self.nudging * (1 - self.interneuron_nudging) * (target - state.prediction) @ self.b.t()

    # --- plasticity -------------------------------------------------------------------------------

    def forward_updates(self, x: torch.Tensor, target: torch.Tensor, lr: float = 1.0
                        ) -> tuple[torch.Tensor, torch.Tensor, SettledState]:
        """The changes of ``W_oh`` and ``W_hx`` that the local rules make for one batch, and the
        settled state. Scaled so that, for small nudging and apical gain in the self-predicting
        state, they equal ``-lr`` times the gradient of the mean squared error with the error sent
        back through ``B`` instead of ``W_oh^T`` (feedback alignment; backprop if ``B = W_oh^T``)."""
        check_tensor_shape("target", target, (None, self.n_output))
        lr = check_real("lr", lr, low=0.0)
        s = self.settle(x, target)
        k = lr * 2.0 / (self.n_output * x.shape[0] * self.nudging)
        d_oh = k * (s.output - s.prediction).t() @ s.hidden
        k_h = k / (self.apical_gain * (1 - self.interneuron_nudging))
        d_hx = k_h * (s.hidden - torch.tanh(s.basal)).t() @ x
        return d_oh, d_hx, s

    @torch.no_grad()
    def fa_updates(self, x: torch.Tensor, target: torch.Tensor, lr: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """What feedback alignment would change in ``W_oh`` and ``W_hx`` for this batch: ``-lr``
        times the gradient of the mean squared error of the feed-forward pass (no apical input),
        with the output error sent to the hidden layer through this network's ``B``. Comparing it
        with :meth:`forward_updates` shows how far the local rules are from feedback alignment
        (chapter 3: large nudging, or no self-prediction phase)."""
        check_tensor_shape("x", x, (None, self.n_input))
        check_tensor_shape("target", target, (x.shape[0], self.n_output))
        lr = check_real("lr", lr, low=0.0)
        r_h = torch.tanh(x @ self.w_hx.t())
        err = r_h @ self.w_oh.t() - target
        k = lr * 2.0 / (self.n_output * x.shape[0])
        d_oh = -k * err.t() @ r_h
        delta = (err @ self.b.t()) * (1 - r_h ** 2)
        return d_oh, -k * delta.t() @ x

    @torch.no_grad()
    def angle_to_feedback_alignment(self, x: torch.Tensor, target: torch.Tensor) -> float:
        """Angle (degrees) between the local change of ``W_hx`` (:meth:`forward_updates`) and
        feedback alignment's (:meth:`fa_updates`) on the same weights and batch: near 0 when
        the local rules approximate feedback alignment (chapter 3)."""
        return angle_between(self.forward_updates(x, target)[1], self.fa_updates(x, target)[1])

    def _step(self, x: torch.Tensor, target: torch.Tensor | None, lr_forward: float,
              lr_interneuron: float) -> SettledState:
        if target is not None and lr_forward > 0:
            d_oh, d_hx, s = self.forward_updates(x, target, lr_forward)
            self.w_oh += d_oh
            self.w_hx += d_hx
        else:
            s = self.settle(x, target)
        n = x.shape[0]
        self.w_ih += lr_interneuron * (s.interneuron - s.hidden @ self.w_ih.t()).t() @ s.hidden / n
        self.w_hi += lr_interneuron * s.apical.t() @ s.interneuron / n
        return s

    def learn_self_prediction(self, inputs: torch.Tensor, n_updates: int, *, batch_size: int = 64,
                              lr: float = 0.3, progress: bool = False) -> History:
        """Phase 1, no targets: only the interneuron and apical weights learn, until the
        interneurons predict the output and cancel the top-down input. ``inputs`` is a pool of
        input patterns (n, n_input) sampled in order. Records the mean |apical potential|."""
        n_updates = check_int("n_updates", n_updates, min_value=1)
        batch_size = check_int("batch_size", batch_size, min_value=1)
        lr = check_real("lr", lr, low=0.0, low_open=True)
        check_tensor_shape("inputs", inputs, (None, self.n_input))
        calls = iter(range(n_updates))

        def batch_fn() -> torch.Tensor:
            k = next(calls)
            return inputs[torch.arange(k * batch_size, (k + 1) * batch_size) % inputs.shape[0]]

        def update(net: "DendriticErrorNet", x: torch.Tensor, step: int) -> tuple[None, dict]:
            s = net._step(x, None, 0.0, lr)
            return None, {"apical": float(s.apical.abs().mean()),
                          "interneuron_error": float((s.interneuron - s.output).abs().mean())}

        return train(self, batch_fn, n_updates, update_fn=update, progress=progress,
                     desc="self-prediction")

    def learn(self, batch_fn, n_updates: int, *, lr: float = 0.3, lr_interneuron: float = 0.5,
              test: tuple[torch.Tensor, torch.Tensor] | None = None, test_every: int = 50,
              progress: bool = False) -> History:
        """Phase 2: learn the task from batches ``batch_fn() -> (x, y*)`` with the local rules
        (plain, batch-averaged updates, scaled so that ``lr`` means what it means for gradient
        descent on the mean squared error: see :meth:`forward_updates`), through the course's
        training loop :func:`utils.training.train`.
        Records the training MSE of the un-nudged prediction, the mean |apical potential| and,
        every ``test_every`` updates, the MSE on the held-out ``test`` set."""
        n_updates = check_int("n_updates", n_updates, min_value=1)
        lr = check_real("lr", lr, low=0.0, low_open=True)
        lr_interneuron = check_real("lr_interneuron", lr_interneuron, low=0.0)
        test_every = check_int("test_every", test_every, min_value=1)

        def update(net: "DendriticErrorNet", batch: Any, step: int) -> tuple[float, dict]:
            x, y = batch
            s = net._step(x, y, lr, lr_interneuron)
            return float((s.prediction - y).pow(2).mean()), {"apical": float(s.apical.abs().mean())}

        def held_out(net: "DendriticErrorNet") -> dict[str, float]:
            return {"test_loss": float((net.predict(test[0]) - test[1]).pow(2).mean())}

        def record(net: "DendriticErrorNet", step: int) -> dict[str, float]:
            return {"test_step": step, **held_out(net)} if (
                step % test_every == 0 or step == n_updates - 1) else {}

        return train(self, batch_fn, n_updates, update_fn=update,
                     after_step=record if test is not None else None, progress=progress,
                     desc="dendritic error")
