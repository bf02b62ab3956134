"""A small, general training loop with a progress bar and a loss/metric history.

The loop is written once for the whole course: a chapter supplies a ``batch_fn`` (what to train
on), a ``loss_fn`` (task loss plus any penalties, and the metrics to record) and, if needed, an
``after_step`` hook (e.g. to re-impose a constraint). Gradient clipping is built in.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .tasks import TaskBatch
from .validation import check_int, check_real

__all__ = ["History", "train", "every", "classification_loss", "cross_entropy_loss"]

LossFn = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]


class History:
    """Per-step record of the training loss and metrics (a dict of lists).

    ``history["loss"]`` is the list of losses, ``history.steps`` the update indices;
    ``history.last("accuracy")`` the final value of a metric.
    """

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)

    def append(self, **metrics: float) -> None:
        for key, value in metrics.items():
            self.values[key].append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.values:
            raise KeyError(f"no metric {key!r}; recorded: {sorted(self.values)}")
        return self.values[key]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def keys(self) -> list[str]:
        return list(self.values)

    def last(self, key: str, n: int = 1) -> float:
        """Mean of the last ``n`` recorded values of ``key``."""
        vals = self[key][-n:]
        return sum(vals) / len(vals)

    def __len__(self) -> int:
        return len(self.values.get("loss", []))

    def __repr__(self) -> str:
        return f"History({len(self)} steps, metrics={sorted(self.values)})"


def cross_entropy_loss(outputs: torch.Tensor, batch: TaskBatch,
                       decision_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy between ``outputs`` (time, batch, actions) and the targets on valid steps.

    ``decision_weight`` multiplies the loss of decision-period steps: in most neurogym tasks the
    decision occupies a few steps out of many, and without extra weight the fixation steps
    dominate the loss early in training.
    """
    decision_weight = check_real("decision_weight", decision_weight, low=0.0, low_open=True)
    valid = batch.valid
    per_step = nn.functional.cross_entropy(outputs[valid], batch.targets[valid], reduction="none")
    weights = 1.0 + (decision_weight - 1.0) * batch.decision[valid].to(per_step.dtype)
    return (per_step * weights).sum() / weights.sum()


def classification_loss(model: nn.Module, batch: TaskBatch, decision_weight: float = 1.0
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    """Default ``loss_fn`` for neurogym tasks: (weighted) cross-entropy over every valid step.

    Records the loss and the decision accuracy of the batch. Use
    ``functools.partial(classification_loss, decision_weight=5)`` to weight the decision period.
    """
    from .analysis import decision_accuracy  # local import: analysis imports training types

    outputs, _ = model(batch.inputs)
    loss = cross_entropy_loss(outputs, batch, decision_weight)
    return loss, {"accuracy": decision_accuracy(outputs.detach(), batch)}


def train(model: nn.Module, batch_fn: Callable[[], Any], n_steps: int, *,
          loss_fn: LossFn = classification_loss, lr: float = 1e-2,
          optimizer: torch.optim.Optimizer | None = None, final_lr: float | None = None,
          clip_grad: float | None = None,
          after_step: Callable[[nn.Module, int], Any] | None = None,
          history: History | None = None, progress: bool = True, desc: str = "training",
          log_every: int = 10) -> History:
    """Train ``model`` for ``n_steps`` updates and return the :class:`History`.

    Args:
        model: any module; ``loss_fn(model, batch)`` defines what it computes.
        batch_fn: called once per update, returns a new batch.
        n_steps: number of optimiser updates (>= 1).
        loss_fn: returns ``(loss, metrics)``; ``metrics`` is a dict of floats to record.
        lr: learning rate of the default Adam optimiser (ignored if ``optimizer`` is given).
        optimizer: a ready optimiser over ``model``'s parameters.
        final_lr: if given, the learning rate decays exponentially from its initial value to
            ``final_lr`` over the ``n_steps`` updates (as in seed 000's training schedule).
        clip_grad: if given, the global gradient norm is clipped to this value before each step
            (a bound on synaptic change, seed 000 section 1.4).
        after_step: ``after_step(model, step)`` runs after every update, e.g. to record that a
            constraint holds; if the model has ``constrain_()``, it is called first.
        history: continue an existing history (e.g. for a second training phase).
        progress: show a tqdm progress bar.
        desc: label of the progress bar.
        log_every: how often (in updates) the progress bar's postfix is refreshed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(batch_fn):
        raise TypeError("batch_fn must be callable and return a batch")
    n_steps = check_int("n_steps", n_steps, min_value=1)
    if optimizer is None:
        lr = check_real("lr", lr, low=0.0, low_open=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = None
    if final_lr is not None:
        final_lr = check_real("final_lr", final_lr, low=0.0, low_open=True)
        start_lr = optimizer.param_groups[0]["lr"]
        gamma = (final_lr / start_lr) ** (1.0 / n_steps)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    if clip_grad is not None:
        clip_grad = check_real("clip_grad", clip_grad, low=0.0, low_open=True)
    log_every = check_int("log_every", log_every, min_value=1)
    history = History() if history is None else history
    model.train()
    bar = tqdm(range(n_steps), desc=desc, disable=not progress, leave=True,
               mininterval=0.5)
    for step in bar:
        batch = batch_fn()
        loss, metrics = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = _grad_norm(model)
        if clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if hasattr(model, "constrain_"):
            model.constrain_()
        if after_step is not None:
            extra = after_step(model, step)
            if isinstance(extra, dict):
                metrics = {**metrics, **extra}
        history.append(loss=loss.item(), grad_norm=grad_norm, **metrics)
        if progress and (step % log_every == 0 or step == n_steps - 1):
            bar.set_postfix({k: f"{history.last(k, min(log_every, len(history))):.3g}"
                             for k in ["loss", *metrics]})
    model.eval()
    return history


def every(n: int, fn: Callable[[nn.Module], dict], last: int | None = None
          ) -> Callable[[nn.Module, int], dict]:
    """An ``after_step`` callback for :func:`train` that records ``fn(model)`` (a dict of metrics)
    at updates 0, n, 2n, ... and, if given, at update ``last`` (e.g. ``n_steps - 1``).

    Example: ``train(..., after_step=every(25, lambda m: fa_angles(m, x, y)))``.
    """
    n = check_int("n", n, min_value=1)
    if not callable(fn):
        raise TypeError(f"fn must be callable (model -> dict of metrics), got {type(fn).__name__}")
    if last is not None:
        last = check_int("last", last, min_value=0)

    def after_step(model: nn.Module, step: int) -> dict:
        return fn(model) if step % n == 0 or step == last else {}

    return after_step


def _grad_norm(model: nn.Module) -> float:
    grads = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return torch.linalg.vector_norm(torch.stack(grads)).item()
