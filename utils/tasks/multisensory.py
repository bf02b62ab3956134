"""The multisensory integration task of Raposo et al. (2012), as trained by Song et al. (2016).

A rat hears clicks, sees flashes, or both, at one event rate ``f`` from 9 to 16 per second for
one second, and reports whether the rate was above or below 12.5 events/s. The network gets five
input channels: a positively and a negatively tuned channel per modality, plus a start cue:

- ``visual+``, ``auditory+``: ``0.4 + 0.8 (f - 9) / 7`` during the stimulus (0 otherwise);
- ``visual-``, ``auditory-``: ``0.4 + 0.8 (16 - f) / 7``;
- ``start``: 1 during the stimulus and decision epochs.

Every channel also carries a baseline 0.2 and white noise, and is rectified:
``u = [0.2 + X + sqrt(2 tau_in / dt) sigma_in xi]_+``. Trials are fixation (100 ms in training,
500 ms at test), stimulus (1000 ms) and decision (300 ms); choice 0 ("high") is correct when
``f > 12.5``. The two outputs must hold 0.2 during fixation; in the decision epoch the chosen
output must reach 1.0 and the other stay at 0.2. A fraction ``5/25`` of training trials are
catch trials: 2500 ms without stimulus or start cue, both outputs at 0.2 throughout. The error
counts only fixation and decision (catch trials: every step). Introduced in chapter 7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..constraints.masks import n_excitatory
from ..validation import check_choice, check_generator, check_int, check_real
from .batch import Batch, per_step, per_trial

__all__ = ["FREQS", "BOUNDARY", "MODALITIES", "CHANNELS", "MultisensoryBatch", "tuned_inputs",
           "input_mask", "criterion_reached", "choices", "modality_report",
           "multisensory_trials", "sample_batch", "draw_conditions", "condition_grid",
           "percent_correct"]

FREQS = tuple(range(9, 17))            #: event rates (events/s)
BOUNDARY = 12.5                        #: category boundary (events/s)
MODALITIES = ("v", "a", "va")          #: visual only, auditory only, both
CHANNELS = ("visual+", "auditory+", "visual-", "auditory-", "start")
HIGH, LOW = 1.0, 0.2                   #: target levels


@dataclass
class MultisensoryBatch(Batch):
    """A batch of multisensory trials, time-major and padded to the longest trial (a
    :class:`~utils.tasks.batch.Batch`).

    Attributes:
        inputs: (time, batch, 5) network inputs (baseline, noise and rectification included).
        targets: (time, batch, 2) target outputs.
        mask: (time, batch, 2) 1 where the error counts, 0 elsewhere (and on padding).
        end: (batch,) index of each trial's last time step (where the choice is read).
        modality: list of "v", "a", "va" or "catch".
        freq: (batch,) event rates (nan for catch trials).
        choice: (batch,) correct choice: 0 if freq > 12.5, 1 if below, -1 for catch trials.
    """

    mask: torch.Tensor = per_step()
    end: torch.Tensor = per_trial()
    modality: list[str] = per_trial(default_factory=list)
    freq: np.ndarray = per_trial(default_factory=lambda: np.zeros(0))
    choice: np.ndarray = per_trial(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def catch(self) -> np.ndarray:
        """Boolean array: which trials are catch trials."""
        return self.choice < 0


def tuned_inputs(freq: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus levels of the positively and negatively tuned channels for event rate(s) ``freq``.

    ``(0.4 + 0.8 (f - 9) / 7, 0.4 + 0.8 (16 - f) / 7)``: both span [0.4, 1.2] over 9-16 events/s
    and sum to 1.6 at every rate.
    """
    f = np.asarray(freq, dtype=float)
    lo, hi = min(FREQS), max(FREQS)
    return 0.4 + 0.8 * (f - lo) / (hi - lo), 0.4 + 0.8 * (hi - f) / (hi - lo)


def _steps(duration: float, dt: float) -> int:
    n = duration / dt
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f"epoch durations must be multiples of dt={dt:g} ms, got {duration:g} ms")
    return int(round(n))


def multisensory_trials(modality: list[str], freq: np.ndarray, *, dt: float = 20.0,
                        fixation: float = 100.0, stimulus: float = 1000.0,
                        decision: float = 300.0, catch_duration: float = 2500.0,
                        baseline: float = 0.2, sigma_in: float = 0.01, tau_in: float = 100.0,
                        generator: torch.Generator | None = None) -> MultisensoryBatch:
    """Build one batch of trials of the given conditions.

    Args:
        modality: per trial, "v", "a", "va" (stimulus) or "catch".
        freq: per trial, the event rate (ignored for catch trials).
        dt: time step (ms); fixation/stimulus/decision/catch_duration: epoch lengths (ms).
        baseline: constant added to every input channel.
        sigma_in: input noise; per-step standard deviation ``sqrt(2 tau_in / dt) sigma_in``.
        generator: torch generator of the input noise (None: the global one).
    """
    modality = list(modality)
    for m in modality:
        check_choice("modality", m, [*MODALITIES, "catch"])
    freq = np.asarray(freq, dtype=float).reshape(-1)
    if len(freq) != len(modality):
        raise ValueError(f"freq must have one entry per trial ({len(modality)}), got {len(freq)}")
    dt = check_real("dt", dt, low=0.0, low_open=True)
    check_generator("generator", generator)
    baseline = check_real("baseline", baseline)
    sigma_in = check_real("sigma_in", sigma_in, low=0.0)
    tau_in = check_real("tau_in", tau_in, low=0.0, low_open=True)
    n_fix, n_stim, n_dec = (_steps(check_real(name, v, low=0.0, low_open=True), dt) for name, v in
                            [("fixation", fixation), ("stimulus", stimulus), ("decision", decision)])
    n_catch = _steps(check_real("catch_duration", catch_duration, low=0.0, low_open=True), dt)
    is_catch = np.array([m == "catch" for m in modality])
    n_trial = n_fix + n_stim + n_dec
    t_max = n_catch if is_catch.any() else n_trial
    t_max = max(t_max, n_trial) if (~is_catch).any() else t_max
    batch = len(modality)
    x = torch.zeros(t_max, batch, len(CHANNELS))
    y = torch.full((t_max, batch, 2), LOW)
    mask = torch.zeros(t_max, batch, 2)
    end = torch.empty(batch, dtype=torch.long)
    choice = np.where(freq > BOUNDARY, 0, 1)
    choice[is_catch] = -1
    pos, neg = tuned_inputs(np.where(is_catch, min(FREQS), freq))
    stim = slice(n_fix, n_fix + n_stim)
    dec = slice(n_fix + n_stim, n_trial)
    for b, m in enumerate(modality):
        if m == "catch":
            mask[:n_catch, b] = 1.0
            end[b] = n_catch - 1
            continue
        if "v" in m:
            x[stim, b, 0], x[stim, b, 2] = float(pos[b]), float(neg[b])
        if "a" in m:
            x[stim, b, 1], x[stim, b, 3] = float(pos[b]), float(neg[b])
        x[n_fix:n_trial, b, 4] = 1.0
        y[dec, b, choice[b]] = HIGH
        mask[:n_fix, b] = 1.0
        mask[dec, b] = 1.0
        end[b] = n_trial - 1
    noise = torch.randn(x.shape, generator=generator)
    x = torch.relu(x + baseline + math.sqrt(2.0 * tau_in / dt) * sigma_in * noise)
    freq = np.where(is_catch, np.nan, freq)
    return MultisensoryBatch(x, y, mask, end, modality, freq, choice)


def sample_batch(n_trials: int = 20, *, p_catch: float = 5 / 25, generator: torch.Generator,
                 **kwargs) -> MultisensoryBatch:
    """A training batch: each trial is a catch trial with probability ``p_catch``, otherwise a
    uniformly drawn modality and event rate. ``kwargs`` go to :func:`multisensory_trials`."""
    modality, freq = draw_conditions(n_trials, p_catch=p_catch, generator=generator)
    return multisensory_trials(modality, freq, generator=generator, **kwargs)


def draw_conditions(n_trials: int, *, p_catch: float = 5 / 25, generator: torch.Generator
                    ) -> tuple[list[str], np.ndarray]:
    """The conditions of ``n_trials`` training trials (chapters 7-8): each is a catch trial with
    probability ``p_catch``, otherwise a uniformly drawn modality and event rate. Returns the
    modalities and the event rates (a catch trial's rate is drawn too, and ignored)."""
    n_trials = check_int("n_trials", n_trials, min_value=1)
    p_catch = check_real("p_catch", p_catch, low=0.0, high=1.0)
    if check_generator("generator", generator) is None:
        raise TypeError("generator must be a torch.Generator (training batches are seeded)")
    catch = torch.rand(n_trials, generator=generator) < p_catch
    mod = torch.randint(len(MODALITIES), (n_trials,), generator=generator)
    fr = torch.randint(len(FREQS), (n_trials,), generator=generator)
    modality = ["catch" if c else MODALITIES[m] for c, m in zip(catch.tolist(), mod.tolist())]
    return modality, np.array([FREQS[i] for i in fr.tolist()], dtype=float)


def condition_grid(n_per_condition: int = 100, *, n_catch: int = 0) -> tuple[list[str], np.ndarray]:
    """Every (modality, rate) condition ``n_per_condition`` times, then ``n_catch`` catch trials.

    The paper's validation set is ``condition_grid(100, n_catch=100)``: 2500 trials.
    """
    n_per_condition = check_int("n_per_condition", n_per_condition, min_value=1)
    n_catch = check_int("n_catch", n_catch, min_value=0)
    modality = [m for m in MODALITIES for _ in FREQS for _ in range(n_per_condition)]
    freq = np.array([f for _ in MODALITIES for f in FREQS for _ in range(n_per_condition)], float)
    return modality + ["catch"] * n_catch, np.concatenate([freq, np.full(n_catch, np.nan)])


def choices(outputs: torch.Tensor, batch: MultisensoryBatch) -> np.ndarray:
    """The network's choice per trial: the larger output at the trial's last step (0 or 1)."""
    last = outputs[batch.end, torch.arange(len(batch))]
    return last.argmax(dim=-1).cpu().numpy()


def percent_correct(outputs: torch.Tensor, batch: MultisensoryBatch,
                    modality: str | None = None) -> float:
    """Percent correct over the non-catch trials (optionally of one modality), read at the end."""
    if modality is not None:
        check_choice("modality", modality, MODALITIES)
    keep = ~batch.catch
    if modality is not None:
        keep &= np.array([m == modality for m in batch.modality])
    if not keep.any():
        raise ValueError("the batch has no trials of that kind")
    return float(100.0 * (choices(outputs, batch)[keep] == batch.choice[keep]).mean())


def input_mask(n_units: int = 150, e_frac: float = 0.8, *, visual: float = 1 / 3,
               auditory: float = 1 / 3, n_input: int = 5) -> torch.Tensor:
    """Which unit receives which input channel, shape (n_units, n_input), 0/1.

    As in Song et al. (2016): the first ``visual`` fraction of the excitatory units and of the
    inhibitory units receive both visual channels, the next ``auditory`` fraction both auditory
    channels, and the rest neither; the start channel reaches no unit (its column is zero). The
    paper's split (1/3, 1/3) gives visual E 0-39 and I 120-129, auditory E 40-79 and I 130-139.
    """
    n_units = check_int("n_units", n_units, min_value=2)
    visual = check_real("visual", visual, low=0.0, high=1.0)
    auditory = check_real("auditory", auditory, low=0.0, high=1.0)
    if visual + auditory > 1.0 + 1e-9:
        raise ValueError(f"visual + auditory must be <= 1, got {visual:g} + {auditory:g}")
    n_input = check_int("n_input", n_input, min_value=5)
    n_e = n_excitatory(n_units, e_frac)
    mask = torch.zeros(n_units, n_input)
    for start, size in [(0, n_e), (n_e, n_units - n_e)]:
        n_v = int(np.floor(visual * size + 1e-9))
        n_a = int(np.floor((visual + auditory) * size + 1e-9)) - n_v
        mask[start:start + n_v, [0, 2]] = 1.0
        mask[start + n_v:start + n_v + n_a, [1, 3]] = 1.0
    return mask


def criterion_reached(accuracies: list[float], *, threshold: float = 90.0, n_checks: int = 5
                      ) -> bool:
    """The paper's stopping rule: the mean of the last ``n_checks`` validation accuracies (percent
    correct, every check counted from the first, untrained one) exceeds ``threshold``."""
    threshold = check_real("threshold", threshold, low=0.0, high=100.0)
    n_checks = check_int("n_checks", n_checks, min_value=1)
    if len(accuracies) == 0:
        return False
    return float(np.mean(accuracies[-n_checks:])) > threshold


@torch.no_grad()
def modality_report(model: torch.nn.Module, batch: MultisensoryBatch) -> dict:
    """Percent correct and psychometric fit of ``model`` per modality on ``batch``.

    Returns ``{"accuracy": {m: percent}, "fit": {m: PsychometricFit}, "choices": array}``; the
    fit is of P(choice "high") against the event rate (:func:`utils.analysis.psychometric.fit_psychometric`).
    """
    from ..analysis.psychometric import fit_psychometric

    if not isinstance(batch, MultisensoryBatch):
        raise TypeError(f"batch must be a MultisensoryBatch, got {type(batch).__name__}")
    was_training = model.training
    model.eval()
    outputs, _ = model(batch.inputs)
    model.train(was_training)
    chosen = choices(outputs, batch)
    modality = np.array(batch.modality)
    report: dict = {"accuracy": {}, "fit": {}, "choices": chosen}
    for m in MODALITIES:
        keep = modality == m
        if not keep.any():
            continue
        report["accuracy"][m] = float(100.0 * (chosen[keep] == batch.choice[keep]).mean())
        report["fit"][m] = fit_psychometric(batch.freq[keep], chosen[keep] == 0)
    return report
