"""Chapter 8's variations of the multisensory task: seven input channels, and testing many networks.

The task of chapter 7 (:mod:`utils.tasks.multisensory`) gives the network five channels: a
positively and a negatively tuned channel per modality and a start cue. The seven-channel version
adds one *modality cue* per modality:

- ``visual cue``: 1 during the stimulus on trials with flashes (visual and multisensory trials);
- ``auditory cue``: 1 during the stimulus on trials with clicks (auditory and multisensory).

Like the other channels they carry the baseline 0.2 and the input noise and are rectified. They
say *which* senses are stimulated but nothing about the event rate, which the tuned channels
already imply as well (their two levels always sum to 1.6 while a modality is on). The cue of a
modality reaches the same units as that modality's tuned channels (:func:`cued_input_mask`).

:func:`stacked_reports` tests a :class:`~utils.models.ei_stack.StackedEIRateRNN` (every network
on the same test trials) and returns per network the percent correct and psychometric fit per
modality, as :func:`~utils.tasks.multisensory.modality_report` does for one network.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..analysis.psychometric import fit_psychometric
from ..models.ei_rate import EIRateRNN
from ..validation import check_generator, check_int
from .multisensory import (
    CHANNELS,
    MODALITIES,
    MultisensoryBatch,
    draw_conditions,
    input_mask,
    multisensory_trials,
)

__all__ = [
    "CUED_CHANNELS",
    "cued_input_mask",
    "cued_trials",
    "sample_cued_batch",
    "stacked_choices",
    "stacked_reports",
    "variant_network",
]

CUED_CHANNELS = (*CHANNELS, "visual cue", "auditory cue")


def cued_trials(modality: list[str], freq: np.ndarray, *, generator: torch.Generator | None = None,
                dt: float = 20.0, fixation: float = 100.0, stimulus: float = 1000.0,
                baseline: float = 0.2, sigma_in: float = 0.01, tau_in: float = 100.0,
                **kwargs) -> MultisensoryBatch:
    """:func:`~utils.tasks.multisensory.multisensory_trials` with the two modality cues appended:
    inputs of shape (time, batch, 7). Other keyword arguments go to ``multisensory_trials``."""
    check_generator("generator", generator)
    batch = multisensory_trials(modality, freq, generator=generator, dt=dt, fixation=fixation,
                                stimulus=stimulus, baseline=baseline, sigma_in=sigma_in,
                                tau_in=tau_in, **kwargs)
    n_fix, n_stim = round(fixation / dt), round(stimulus / dt)
    cues = torch.zeros(batch.inputs.shape[0], len(batch), 2)
    for b, m in enumerate(batch.modality):
        if m != "catch":
            cues[n_fix:n_fix + n_stim, b, 0] = float("v" in m)
            cues[n_fix:n_fix + n_stim, b, 1] = float("a" in m)
    noise = torch.randn(cues.shape, generator=generator)
    cues = torch.relu(cues + baseline + math.sqrt(2.0 * tau_in / dt) * sigma_in * noise)
    batch.inputs = torch.cat([batch.inputs, cues], dim=-1)
    return batch


def sample_cued_batch(n_trials: int = 20, *, p_catch: float = 5 / 25, generator: torch.Generator,
                      **kwargs) -> MultisensoryBatch:
    """A training batch of seven-channel trials, conditions drawn as by
    :func:`~utils.tasks.multisensory.sample_batch` (catch with probability ``p_catch``, otherwise
    a uniform modality and event rate). A network with five inputs ignores the two cues (its
    stacked input weights are zero there), so all of chapter 8's networks train on these."""
    modality, freq = draw_conditions(n_trials, p_catch=p_catch, generator=generator)
    return cued_trials(modality, freq, generator=generator, **kwargs)


def cued_input_mask(n_units: int = 150, e_frac: float = 0.8, *, visual: float = 1 / 3,
                    auditory: float = 1 / 3) -> torch.Tensor:
    """Input mask (n_units, 7) for the seven channels: as
    :func:`~utils.tasks.multisensory.input_mask`, with the visual cue (channel 5) reaching the
    units of the visual channels and the auditory cue (channel 6) those of the auditory ones."""
    mask = input_mask(n_units, e_frac, visual=visual, auditory=auditory, n_input=7)
    mask[:, 5] = mask[:, 0]
    mask[:, 6] = mask[:, 1]
    return mask


def variant_network(*, e_frac: float = 0.8, visual: float = 1 / 3, auditory: float = 1 / 3,
                    cues: bool = False, seed: int = 0, n_units: int = 150):
    """Chapter 7's network (:class:`~utils.models.ei_rate.EIRateRNN`) with one variant's E/I
    ratio, input split (fractions of the units that receive visual and auditory input) and,
    with ``cues``, the seven channels of :func:`cued_trials` (chapter 8)."""
    if not isinstance(cues, bool):
        raise TypeError(f"cues must be True or False, got {cues!r}")
    if cues:
        mask = cued_input_mask(n_units, e_frac, visual=visual, auditory=auditory)
    else:
        mask = input_mask(n_units, e_frac, visual=visual, auditory=auditory)
    return EIRateRNN(mask.shape[1], n_units, 2, e_frac=e_frac, input_mask=mask, seed=seed)


@torch.no_grad()
def stacked_choices(model, batch: MultisensoryBatch, *, chunk: int = 100) -> np.ndarray:
    """Choices (K, n_trials) of every network of a stacked model on the same ``batch``: the larger
    output at each trial's last step. The trials go through in chunks of ``chunk`` (memory)."""
    from ..models.ei_stack import StackedEIRateRNN

    if not isinstance(model, StackedEIRateRNN):
        raise TypeError(f"model must be a StackedEIRateRNN, got {type(model).__name__}")
    if not isinstance(batch, MultisensoryBatch):
        raise TypeError(f"batch must be a MultisensoryBatch, got {type(batch).__name__}")
    chunk = check_int("chunk", chunk, min_value=1)
    inputs = batch.inputs
    if inputs.shape[-1] < model.n_input:       # five-channel trials for a stack that has cues
        raise ValueError(f"batch has {inputs.shape[-1]} input channels, the model {model.n_input}")
    inputs = inputs[..., :model.n_input]
    out = []
    for start in range(0, len(batch), chunk):
        sl = slice(start, start + chunk)
        outputs, _ = model(inputs[:, sl])
        end = batch.end[sl]
        last = outputs[end, :, torch.arange(len(end))]          # (chunk, K, n_output)
        out.append(last.argmax(-1).t())
    return torch.cat(out, dim=1).numpy()


def stacked_reports(model, batch: MultisensoryBatch, *, chunk: int = 100) -> list[dict]:
    """Per network of a stacked model: ``{"accuracy": {m: percent}, "fit": {m: PsychometricFit}}``
    for each modality ``m`` of ``batch`` (non-catch trials), as chapter 7's ``modality_report``."""
    chosen = stacked_choices(model, batch, chunk=chunk)
    modality = np.array(batch.modality)
    reports = []
    for k in range(chosen.shape[0]):
        rep: dict = {"accuracy": {}, "fit": {}}
        for m in MODALITIES:
            keep = modality == m
            if not keep.any():
                continue
            rep["accuracy"][m] = float(100.0 * (chosen[k, keep] == batch.choice[keep]).mean())
            rep["fit"][m] = fit_psychometric(batch.freq[keep], chosen[k, keep] == 0)
        reports.append(rep)
    return reports
