"""The course's one training loop, with a progress bar and a loss/metric history.

Every chapter trains through :func:`train`. A chapter supplies a ``batch_fn`` (what to train on)
and either a ``loss_fn`` (task loss plus any penalties, and the metrics to record; the loop then
takes a gradient step with an optimiser, Adam by default) or, for learning rules that compute
their own updates (RFLO, the dendritic-error network), an ``update_fn`` that performs the whole
update. Hooks cover the rest: ``before_update`` measures something on the batch about to be
learned (e.g. the angle between a rule's update and the true gradient), ``after_step`` records or
re-imposes something after each update (:func:`every` thins it out), ``stop_when`` ends training
early (:func:`loss_below`). Gradient clipping and an exponential learning-rate decay are built in;
a model with a ``constrain_()`` method has it called after every step (projected descent).

Introduced in chapter 1; used by every chapter.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..validation import check_bool, check_choice, check_int, check_real

__all__ = ["History", "train", "every", "loss_below"]

LossFn = Callable[[Any, Any], "tuple[torch.Tensor, dict[str, float]]"]
UpdateFn = Callable[[Any, Any, int], "tuple[float | None, dict[str, float]]"]


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
        """Mean of the last ``n`` recorded values of ``key`` (of all of them if fewer were recorded).

        Raises:
            ValueError: ``n`` is not an integer >= 1, or ``key`` has no values yet.
        """
        n = check_int("n", n, min_value=1)
        vals = self[key][-n:]
        if not vals:
            raise ValueError(f"no values of {key!r} recorded yet")
        return sum(vals) / len(vals)

    def __len__(self) -> int:
        return len(self.values.get("loss", []))

    def __repr__(self) -> str:
        return f"History({len(self)} steps, metrics={sorted(self.values)})"


def _default_loss_fn(model: Any, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
    from .losses import classification_loss  # local: losses imports the task modules

    return classification_loss(model, batch)


def train(model: Any, batch_fn: Callable[[], Any], n_updates: int, *,
          loss_fn: LossFn | None = None, lr: float = 1e-2,
          optimizer: torch.optim.Optimizer | None = None, final_lr: float | None = None,
          clip_grad: float | None = None, update_fn: UpdateFn | None = None,
          before_update: Callable[[Any, Any, int], Any] | None = None,
          after_step: Callable[[Any, int], Any] | None = None,
          stop_when: Callable[["History"], bool] | None = None,
          history: History | None = None, progress: bool = True, desc: str = "training",
          log_every: int = 10, on_nonfinite: str = "raise") -> History:
    """Train ``model`` for (at most) ``n_updates`` updates and return the :class:`History`.

    Args:
        model: the network (a module with ``forward``; with ``update_fn`` any object).
        batch_fn: called once per update, returns a new batch.
        n_updates: number of updates (>= 1).
        loss_fn: ``loss_fn(model, batch) -> (loss, metrics)``, ``metrics`` a dict of floats to
            record; default :func:`utils.training.classification_loss`.
        lr: learning rate of the default Adam optimiser (ignored if ``optimizer`` is given).
        optimizer: a ready optimiser over ``model``'s parameters.
        final_lr: if given, the learning rate decays exponentially from its initial value to
            ``final_lr`` over the ``n_updates`` updates.
        clip_grad: if given, the global gradient norm is clipped to this value before each step
            (a bound on synaptic change, chapter 2).
        update_fn: ``update_fn(model, batch, step) -> (loss, metrics)`` performs the whole update
            itself (a learning rule with its own weight changes); ``loss`` is a float or None.
            Excludes ``loss_fn``, ``optimizer``, ``final_lr`` and ``clip_grad``.
        before_update: ``before_update(model, batch, step)`` runs before each update, outside the
            timed part; a dict it returns is recorded.
        after_step: ``after_step(model, step)`` runs after every update (after ``constrain_()``),
            e.g. to record that a constraint holds; a dict it returns is recorded.
        stop_when: ``stop_when(history) -> bool`` is asked after every update; True ends training.
        history: continue an existing history (e.g. for a second training phase).
        progress: show a tqdm progress bar.
        desc: label of the progress bar.
        log_every: how often (in updates) the progress bar's postfix is refreshed.
        on_nonfinite: what to do when the loss or a parameter becomes inf/NaN: ``"raise"``
            (default) stops with a :class:`FloatingPointError` naming the update and the likely
            causes; ``"stop"`` ends training quietly (``history.diverged_at`` is the update);
            ``"continue"`` trains on regardless (chapter 2 does this on purpose, to show
            unclipped updates blowing up).

    Records, per update: ``loss`` (when there is one), ``grad_norm`` (default update), the
    metrics, and ``seconds``, the cumulative time spent in the updates themselves (batch
    generation and hooks excluded). ``history.stopped_at`` is the number of updates this call did.
    """
    if update_fn is None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (or pass update_fn), got {type(model).__name__}")
    for name, fn in [("batch_fn", batch_fn), ("loss_fn", loss_fn), ("update_fn", update_fn),
                     ("before_update", before_update), ("after_step", after_step),
                     ("stop_when", stop_when)]:
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    n_updates = check_int("n_updates", n_updates, min_value=1)
    log_every = check_int("log_every", log_every, min_value=1)
    check_bool("progress", progress)
    on_nonfinite = check_choice("on_nonfinite", on_nonfinite, ["raise", "stop", "continue"])
    if history is not None and not isinstance(history, History):
        raise TypeError(f"history must be a History or None, got {type(history).__name__}")
    scheduler = None
    if update_fn is not None:
        clashing = [k for k, v in [("loss_fn", loss_fn), ("optimizer", optimizer),
                                   ("final_lr", final_lr), ("clip_grad", clip_grad)] if v is not None]
        if clashing:
            raise ValueError(f"update_fn performs the whole update; do not also pass {clashing}")
    else:
        loss_fn = _default_loss_fn if loss_fn is None else loss_fn
        if optimizer is None:
            lr = check_real("lr", lr, low=0.0, low_open=True)
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        elif not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if final_lr is not None:
            final_lr = check_real("final_lr", final_lr, low=0.0, low_open=True)
            start_lr = optimizer.param_groups[0]["lr"]
            gamma = (final_lr / start_lr) ** (1.0 / n_updates)
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
        if clip_grad is not None:
            clip_grad = check_real("clip_grad", clip_grad, low=0.0, low_open=True)
    history = History() if history is None else history
    if hasattr(model, "train"):
        model.train()
    elapsed = history.values["seconds"][-1] if history.values.get("seconds") else 0.0
    bar = tqdm(range(n_updates), desc=desc, disable=not progress, leave=True, mininterval=0.5)
    done = 0
    history.diverged_at = None  # type: ignore[attr-defined]
    for step in bar:
        batch = batch_fn()
        metrics: dict[str, float] = {}
        if before_update is not None:
            metrics.update(before_update(model, batch, step) or {})
        start = time.perf_counter()
        if update_fn is not None:
            loss_value, extra = update_fn(model, batch, step)
            record = {} if loss_value is None else {"loss": float(loss_value)}
        else:
            loss, extra = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = _grad_norm(model)
            if clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            record = {"loss": loss.item(), "grad_norm": grad_norm}
        if hasattr(model, "constrain_"):
            model.constrain_()
        elapsed += time.perf_counter() - start
        metrics.update(extra or {})
        if after_step is not None:
            metrics.update(after_step(model, step) or {})
        history.append(**record, **metrics, seconds=elapsed)
        done = step + 1
        if on_nonfinite != "continue":
            problem = _nonfinite(record.get("loss"), model)
            if problem is not None:
                history.diverged_at = step  # type: ignore[attr-defined]
                if on_nonfinite == "raise":
                    bar.close()
                    raise FloatingPointError(
                        f"training diverged at update {step}: {problem}. Likely causes: a learning "
                        f"rate too large for this model (lr), no bound on the update size (try "
                        f"clip_grad=1.0), or inf/NaN in the batch's inputs or targets. Pass "
                        f"on_nonfinite='stop' or 'continue' to keep the history instead.")
                break
        if progress and (step % log_every == 0 or step == n_updates - 1):
            shown = [k for k in ["loss", *metrics] if history.values.get(k)]
            bar.set_postfix({k: f"{history.last(k, min(log_every, len(history[k]))):.3g}" for k in shown})
        if stop_when is not None and stop_when(history):
            break
    bar.close()
    history.stopped_at = done  # type: ignore[attr-defined]
    if hasattr(model, "eval"):
        model.eval()
    return history


def every(n: int, fn: Callable[[nn.Module], dict], last: int | None = None
          ) -> Callable[[nn.Module, int], dict]:
    """An ``after_step`` callback for :func:`train` that records ``fn(model)`` (a dict of metrics)
    at updates 0, n, 2n, ... and, if given, at update ``last`` (e.g. ``n_updates - 1``).

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


def loss_below(target: float, window: int = 10, key: str = "loss") -> Callable[[History], bool]:
    """A ``stop_when`` rule for :func:`train`: stop once the mean of the last ``window`` recorded
    values of ``key`` is below ``target`` (and at least ``window`` values have been recorded)."""
    target = check_real("target", target, low=0.0, low_open=True)
    window = check_int("window", window, min_value=1)
    if not isinstance(key, str):
        raise TypeError(f"key must be a metric name (str), got {type(key).__name__}")

    def stop(history: History) -> bool:
        values = history.values.get(key, [])
        return len(values) >= window and history.last(key, window) < target

    return stop


def _nonfinite(loss: float | None, model: Any) -> str | None:
    """Describe the first non-finite value (the loss, then each parameter), or None."""
    if loss is not None and not math.isfinite(loss):
        return f"the loss is {loss}"
    named = getattr(model, "named_parameters", None)
    if callable(named):
        for name, p in named():
            if not bool(torch.isfinite(p).all()):
                return f"parameter {name!r} holds inf or NaN"
    return None


def _grad_norm(model: nn.Module) -> float:
    grads = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return torch.linalg.vector_norm(torch.stack(grads)).item()
