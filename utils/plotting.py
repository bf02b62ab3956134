"""Consistent figures for the course: one style, labelled axes with units, shared colours.

Chapter-specific figure helpers live here too (appended per chapter), so that notebooks only call
functions and never paste plotting code they share.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .validation import as_numpy, check_int

#: Colours used everywhere: excitatory red, inhibitory blue, unconstrained grey, etc.
COLORS = {
    "excitatory": "#c0392b",
    "inhibitory": "#2166ac",
    "unconstrained": "#4d4d4d",
    "constrained": "#c0392b",
    "target": "#1b9e77",
    "reference": "#7570b3",
}


def use_style() -> None:
    """Apply the course's matplotlib style (call once per notebook)."""
    plt.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "figure.figsize": (6.0, 3.6),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.frameon": False,
        "font.size": 10,
    })


def smooth(values: Sequence[float], window: int = 20) -> np.ndarray:
    """Running mean over ``window`` points (shorter at the start), for noisy learning curves."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_learning_curves(histories: Mapping[str, "object"], metrics: Sequence[str] = ("loss", "accuracy"),
                         window: int = 20, colors: Mapping[str, str] | None = None,
                         log_loss: bool = True, axes=None):
    """Plot one panel per metric, one line per named :class:`~utils.training.History`.

    Returns the array of axes.
    """
    if not histories:
        raise ValueError("histories must map at least one label to a History")
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
        axes = axes[0]
    for ax, metric in zip(axes, metrics):
        for label, hist in histories.items():
            color = (colors or {}).get(label)
            ax.plot(smooth(hist[metric], window), label=label, color=color)
        ax.set_xlabel("training update")
        ax.set_ylabel(metric.replace("_", " ") + (f" (running mean of {window})" if window > 1 else ""))
        if metric == "loss" and log_loss:
            ax.set_yscale("log")
    axes[0].legend()
    plt.tight_layout()
    return axes


def plot_weight_matrix(weights, n_exc: int | None = None, ax=None, title: str = "recurrent weights",
                       vmax: float | None = None):
    """Show a signed weight matrix ``W[post, pre]`` in a diverging colour map.

    With ``n_exc`` a line separates excitatory from inhibitory *columns* (presynaptic units).
    """
    w = as_numpy(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D, got shape {w.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.8))
    vmax = float(np.abs(w).max()) if vmax is None else vmax
    im = ax.imshow(w, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    if n_exc is not None:
        ax.axvline(n_exc - 0.5, color="k", lw=0.8)
        ax.axhline(n_exc - 0.5, color="k", lw=0.8, ls=":")
    ax.set_xlabel("presynaptic unit j (column)")
    ax.set_ylabel("postsynaptic unit i (row)")
    ax.set_title(title)
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="weight $W_{ij}$")
    return ax


# --- Chapter 1: architecture ---------------------------------------------------------------

def plot_accuracy_by_condition(results: Mapping[str, Mapping[float, float]], xlabel: str = "coherence (%)",
                               reference: Mapping[float, float] | None = None,
                               reference_label: str = "ideal observer", chance: float | None = 0.5,
                               colors: Mapping[str, str] | None = None, ax=None):
    """Accuracy against a condition (e.g. coherence), one line per network.

    ``results`` maps a label to ``{condition: accuracy}``; ``reference`` adds a dashed bound
    (such as the ideal observer) and ``chance`` a dotted chance line.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.4))
    for label, acc in results.items():
        xs = sorted(acc)
        ax.plot(xs, [acc[x] for x in xs], "o-", label=label, color=(colors or {}).get(label))
    if reference is not None:
        xs = sorted(reference)
        ax.plot(xs, [reference[x] for x in xs], "--", color=COLORS["reference"], label=reference_label)
    if chance is not None:
        ax.axhline(chance, color="0.6", ls=":", lw=1, label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("decision accuracy")
    ax.set_ylim(0.4, 1.02)
    ax.legend(fontsize=8)
    return ax


def plot_population_rates(rates, n_exc: int, dt: float, groups=None, ax=None,
                          title: str = "population activity"):
    """Mean rate of the excitatory and inhibitory populations over time.

    ``rates`` is (time, batch, N); ``groups`` optionally maps a label to a boolean mask over the
    batch (e.g. trials of each choice), drawn with solid and dashed lines.
    """
    r = as_numpy(rates)
    if r.ndim != 3:
        raise ValueError(f"rates must have shape (time, batch, units), got {r.shape}")
    if r.shape[2] < 2:
        raise ValueError(f"rates must have at least 2 units (E and I), got {r.shape[2]}")
    # the first n_exc units are excitatory, the rest inhibitory: both groups must be non-empty
    n_exc = check_int("n_exc", n_exc, min_value=1, max_value=r.shape[2] - 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.4))
    t = np.arange(r.shape[0]) * dt
    groups = groups or {"all trials": np.ones(r.shape[1], dtype=bool)}
    styles = ["-", "--", ":", "-."]
    for (label, sel), ls in zip(groups.items(), styles):
        sel = np.asarray(sel, dtype=bool)
        ax.plot(t, r[:, sel, :n_exc].mean(axis=(1, 2)), ls, color=COLORS["excitatory"],
                label=f"E, {label}")
        ax.plot(t, r[:, sel, n_exc:].mean(axis=(1, 2)), ls, color=COLORS["inhibitory"],
                label=f"I, {label}")
    ax.set_xlabel("time in trial (ms)")
    ax.set_ylabel("mean rate (a.u.)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_initial_weights(e_frac: float = 0.8, sparsity: float = 0.2, n_units: int = 40,
                         seed: int = 0):
    """Draw the initial recurrent weights of an E/I :class:`utils.models.RateRNN` with the given
    excitatory fraction and sparsity (chapter 1's interactive figure); returns the axes."""
    from .models import RateRNN  # local: plotting is imported by code that models import

    model = RateRNN(3, n_units, 3, dale=True, e_frac=e_frac, sparsity=sparsity, seed=seed)
    ax = plot_weight_matrix(model.recurrent_weights(), n_exc=model.n_exc,
                            title=f"E fraction {e_frac:.2f}, sparsity {sparsity:.2f}")
    plt.show()
    return ax
