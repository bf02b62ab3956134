"""Spatially embedded networks (chapter 2): positions, distances, communicability, wiring stats.

Units get positions on a regular 2-D sheet or 3-D grid (:func:`grid_positions`), pairwise
Euclidean distances (:func:`distance_matrix`) enter the wiring cost of
:func:`utils.constraints.penalties.wiring_penalty`, and the functions below measure what the cost did to the
trained connectivity: the weight-weighted mean connection length, the share of the total weight
carried by short connections, weight against distance, modularity and clustering.

Graph measures treat the network as undirected and weighted, with edge weights
``A = (|W| + |W|^T) / 2`` (zero diagonal).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..validation import as_numpy, check_bool, check_int, check_real
from .penalties import near_zero_fraction

__all__ = [
    "grid_positions",
    "distance_matrix",
    "communicability",
    "mean_connection_length",
    "short_weight_share",
    "weight_by_distance",
    "symmetric_strength",
    "modularity",
    "clustering_coefficient",
    "spatial_summary",
    "plot_grid_network",
    "plot_weight_vs_distance",
]


def _square(name: str, value) -> np.ndarray:
    if not hasattr(value, "shape"):
        raise TypeError(f"{name} must be a square tensor or array, got {type(value).__name__}")
    if len(value.shape) != 2 or value.shape[0] != value.shape[1]:
        raise ValueError(f"{name} must be a square 2-D matrix, got shape {tuple(value.shape)}")
    array = as_numpy(value, float)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {int((~np.isfinite(array)).sum())} NaN or "
                         f"infinite entries (did training diverge?)")
    return array


def grid_positions(shape: Sequence[int], spacing: float = 1.0) -> torch.Tensor:
    """Positions of ``prod(shape)`` units on a regular grid, shape ``(N, len(shape))``.

    Args:
        shape: grid size per axis, 2 or 3 positive integers, e.g. ``(8, 8)`` for a sheet or
            ``(4, 4, 4)`` for a cube. Unit ``k`` sits at the ``k``-th point in C order (the last
            axis varies fastest).
        spacing: distance between neighbouring grid points (in whatever length unit you choose;
            the course uses "grid spacings" or, for a cortical sheet, millimetres).
    """
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
        raise TypeError(f"shape must be a sequence of 2 or 3 integers, got {shape!r}")
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must have 2 (a plane) or 3 (a cube) entries, got {len(shape)}")
    sizes = [check_int(f"shape[{i}]", s, min_value=1) for i, s in enumerate(shape)]
    spacing = check_real("spacing", spacing, low=0.0, low_open=True)
    axes = [torch.arange(s, dtype=torch.float32) * spacing for s in sizes]
    return torch.cartesian_prod(*axes).reshape(-1, len(sizes))


def distance_matrix(positions: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``d_ij = |p_i - p_j|`` between all pairs of positions, shape (N, N)."""
    if not isinstance(positions, torch.Tensor):
        positions = torch.as_tensor(np.asarray(positions), dtype=torch.float32)
    if positions.dim() != 2 or positions.shape[0] < 1:
        raise ValueError(f"positions must have shape (units, dimensions), got {tuple(positions.shape)}")
    diff = positions[:, None, :] - positions[None, :, :]
    return diff.pow(2).sum(-1).sqrt()


def communicability(weights: torch.Tensor) -> torch.Tensor:
    """Weighted communicability ``C = expm(S^{-1/2} |W| S^{-1/2})`` (Achterberg et al. 2023).

    ``S`` is the diagonal matrix of node strengths (row sums of ``|W|``). ``C_ij`` sums the walks
    of every length from ``j`` to ``i``, weighted down the longer they are, so a connection that
    lies on many short routes is "important" for communication. Units with zero strength are
    treated as having strength 1 (their rows stay zero). Differentiable; returns a tensor (N, N).
    """
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor, got {type(weights).__name__}")
    _square("weights", weights)
    a = weights.abs()
    strength = a.sum(dim=1)
    inv_sqrt = torch.where(strength > 0, strength.clamp(min=1e-12).rsqrt(), torch.ones_like(strength))
    return torch.linalg.matrix_exp(inv_sqrt[:, None] * a * inv_sqrt[None, :])


def mean_connection_length(weights, distances) -> float:
    """Weight-weighted mean connection length ``sum |W_ij| d_ij / sum |W_ij|``.

    The length of an average unit of synaptic weight: it falls when strong connections are short.
    """
    w = np.abs(_square("weights", weights))
    d = _square("distances", distances)
    if d.shape != w.shape:
        raise ValueError(f"distances must have the shape of weights {w.shape}, got {d.shape}")
    total = w.sum()
    if total == 0:
        raise ValueError("weights are all zero: the mean connection length is undefined")
    return float((w * d).sum() / total)


def short_weight_share(weights, distances, max_length: float) -> float:
    """Share of the total weight ``sum |W|`` carried by connections of length ``<= max_length``."""
    w = np.abs(_square("weights", weights))
    d = _square("distances", distances)
    if d.shape != w.shape:
        raise ValueError(f"distances must have the shape of weights {w.shape}, got {d.shape}")
    max_length = check_real("max_length", max_length, low=0.0)
    total = w.sum()
    if total == 0:
        raise ValueError("weights are all zero: the share is undefined")
    return float(w[d <= max_length].sum() / total)


def weight_by_distance(weights, distances, exclude_self: bool = True
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean ``|W_ij|`` at each distinct distance on the grid.

    Returns ``(lengths, mean_abs_weight, counts)``: the distinct distances (rounded to 1e-6), the
    mean magnitude of the connections of that length and how many connections have it.
    """
    w = np.abs(_square("weights", weights))
    d = _square("distances", distances)
    if d.shape != w.shape:
        raise ValueError(f"distances must have the shape of weights {w.shape}, got {d.shape}")
    check_bool("exclude_self", exclude_self)
    sel = ~np.eye(len(w), dtype=bool) if exclude_self else np.ones_like(w, dtype=bool)
    keys = np.round(d[sel], 6)
    lengths, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=w[sel]) / counts
    return lengths, means, counts


def symmetric_strength(weights) -> np.ndarray:
    """Undirected weighted adjacency ``A = (|W| + |W|^T) / 2`` with a zero diagonal (numpy)."""
    w = np.abs(_square("weights", weights))
    a = 0.5 * (w + w.T)
    np.fill_diagonal(a, 0.0)
    return a


def _split(b: np.ndarray, members: np.ndarray) -> np.ndarray | None:
    """Leading-eigenvector bisection of ``members`` (Newman 2006); None if it does not help."""
    sub = b[np.ix_(members, members)]
    bg = sub - np.diag(sub.sum(axis=1))
    vals, vecs = np.linalg.eigh(bg)
    if vals[-1] <= 1e-10:
        return None
    v = vecs[:, -1]
    v = v * (1.0 if v[np.argmax(np.abs(v))] > 0 else -1.0)  # fix the eigenvector's sign
    s = np.where(v >= 0, 1.0, -1.0)
    if np.all(s == s[0]):
        return None
    gain = s @ bg @ s
    if gain <= 1e-10:
        return None
    return s


def modularity(weights, refine: bool = True) -> tuple[float, np.ndarray]:
    """Newman's modularity ``Q`` of the undirected weighted graph of ``weights``, with communities.

    Communities are found by repeated leading-eigenvector bisection (Newman 2006), optionally
    refined by moving single units to the neighbouring community that raises ``Q`` most, until
    no move helps. Deterministic. ``Q`` is the fraction of weight within communities minus its
    expected value for a random graph with the same node strengths: about 0 for unstructured
    networks, up to about 0.3-0.7 for clearly modular ones.

    Returns:
        ``(Q, labels)`` with ``labels`` an integer community label per unit.
    """
    a = symmetric_strength(weights)
    check_bool("refine", refine)
    two_m = a.sum()
    n = len(a)
    if two_m <= 0:
        raise ValueError("weights are all zero: modularity is undefined")
    k = a.sum(axis=1)
    b = a - np.outer(k, k) / two_m
    labels = np.zeros(n, dtype=int)
    queue = [np.arange(n)]
    next_label = 1
    while queue:
        members = queue.pop(0)
        if len(members) < 2:
            continue
        s = _split(b, members)
        if s is None:
            continue
        right = members[s < 0]
        labels[right] = next_label
        next_label += 1
        queue.extend([members[s > 0], right])
    if refine:
        for _ in range(50):
            moved = False
            for i in range(n):
                own = labels[i]
                comms = np.unique(labels)
                gains = np.array([b[i, labels == c].sum() - (b[i, i] if c == own else 0.0)
                                  for c in comms])
                current = gains[comms == own][0]
                best = int(np.argmax(gains))
                if gains[best] > current + 1e-12:
                    labels[i] = comms[best]
                    moved = True
            if not moved:
                break
    _, labels = np.unique(labels, return_inverse=True)
    q = float((b * (labels[:, None] == labels[None, :])).sum() / two_m)
    return q, labels


def clustering_coefficient(weights, density: float | None = None) -> float:
    """Mean clustering coefficient of the undirected graph of ``weights``.

    Args:
        weights: a weight matrix (N, N); the graph has edge weights ``(|W| + |W|^T) / 2``.
        density: if given, keep only the strongest ``density`` fraction of the ``N(N-1)/2``
            possible edges, as unweighted edges, and return the ordinary (binary) clustering
            coefficient: the probability that two neighbours of a unit are neighbours too. A
            fixed density compares networks of different sparsity fairly (a random graph gives
            about ``density``). If None, the weighted coefficient of Onnela et al. (2005):
            with ``w_hat = A / max(A)``, ``C_i = sum_jk (w_hat_ij w_hat_jk w_hat_ki)^{1/3} /
            (k_i (k_i - 1))``, ``k_i`` the number of non-zero connections of unit ``i``.

    Units with fewer than two neighbours count as 0.
    """
    a = symmetric_strength(weights)
    top = a.max()
    if top <= 0:
        raise ValueError("weights are all zero: clustering is undefined")
    if density is not None:
        density = check_real("density", density, low=0.0, high=1.0, low_open=True)
        n = len(a)
        iu = np.triu_indices(n, k=1)
        n_keep = max(1, int(round(density * len(iu[0]))))
        order = np.argsort(a[iu], kind="stable")[::-1][:n_keep]
        c = np.zeros_like(a)
        c[iu[0][order], iu[1][order]] = 1.0
        c = c + c.T
    else:
        c = np.cbrt(a / top)
    tri = np.diagonal(c @ c @ c)
    deg = ((c if density is not None else a) > 0).sum(axis=1)
    denom = deg * (deg - 1)
    return float(np.mean(np.where(denom > 0, tri / np.maximum(denom, 1), 0.0)))


def spatial_summary(weights, distances, *, short_length: float = 1.5,
                    clustering_density: float = 0.1) -> dict:
    """The spatial measures chapter 2 compares across penalties, for one weight matrix.

    Returns a dict with ``length`` (:func:`mean_connection_length`), ``short``
    (:func:`short_weight_share` up to ``short_length``), ``q`` and ``communities``
    (:func:`modularity`), ``clustering`` (:func:`clustering_coefficient` at
    ``clustering_density``) and ``sparse`` (the fraction of weights below 1% of the largest,
    :func:`utils.constraints.penalties.near_zero_fraction`).
    """
    short_length = check_real("short_length", short_length, low=0.0, low_open=True)
    q, communities = modularity(weights)
    return dict(length=mean_connection_length(weights, distances),
                short=short_weight_share(weights, distances, short_length), q=q,
                clustering=clustering_coefficient(weights, density=clustering_density),
                sparse=near_zero_fraction(weights), communities=communities)


def plot_grid_network(weights, positions, ax=None, top_fraction: float = 0.05,
                      labels: np.ndarray | None = None, title: str = "strongest connections"):
    """Draw units at their grid positions and the strongest ``top_fraction`` connections.

    Works for 2-D or 3-D positions (a 3-D axis is created if needed). Line darkness follows
    ``|W_ij|``; ``labels`` (e.g. communities from :func:`modularity`) colour the units.
    """
    import matplotlib.pyplot as plt

    w = np.abs(_square("weights", weights))
    p = as_numpy(positions, float)
    if p.ndim != 2 or p.shape[0] != w.shape[0] or p.shape[1] not in (2, 3):
        raise ValueError(f"positions must have shape ({w.shape[0]}, 2 or 3), got {p.shape}")
    top_fraction = check_real("top_fraction", top_fraction, low=0.0, high=1.0, low_open=True)
    dim = p.shape[1]
    if ax is None:
        fig = plt.figure(figsize=(4.2, 4.0))
        ax = fig.add_subplot(111, projection="3d" if dim == 3 else None)
    off = w.copy()
    np.fill_diagonal(off, 0.0)
    n_show = max(1, int(round(top_fraction * (off > 0).sum())))
    order = np.argsort(off, axis=None)[::-1][:n_show]
    vmax = off.max() if off.max() > 0 else 1.0
    for flat in order[::-1]:
        i, j = np.unravel_index(flat, off.shape)
        shade = 0.15 + 0.85 * off[i, j] / vmax
        seg = np.stack([p[j], p[i]])
        ax.plot(*seg.T, color=(0.2, 0.2, 0.2, shade), lw=0.6 + 1.2 * off[i, j] / vmax)
    colors = "0.4" if labels is None else labels
    ax.scatter(*p.T, c=colors, cmap="tab10" if labels is not None else None, s=22,
               depthshade=False, zorder=3, edgecolors="k", linewidths=0.3) if dim == 3 else \
        ax.scatter(*p.T, c=colors, cmap="tab10" if labels is not None else None, s=22, zorder=3,
                   edgecolors="k", linewidths=0.3)
    ax.set_xlabel("x (grid spacings)")
    ax.set_ylabel("y (grid spacings)")
    if dim == 3:
        ax.set_zlabel("z (grid spacings)")
    ax.set_title(title)
    return ax


def plot_weight_vs_distance(results: dict, distances, ax=None, colors: dict | None = None):
    """Mean ``|W_ij|`` against connection length, one line per labelled weight matrix.

    ``results`` maps a label to a weight matrix; each curve is normalised by the matrix's mean
    ``|W|`` so that networks with different overall weight scales can be compared.
    """
    import matplotlib.pyplot as plt

    if not isinstance(results, dict) or not results:
        raise ValueError("results must map at least one label to a weight matrix")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.4))
    for label, w in results.items():
        lengths, means, _ = weight_by_distance(w, distances)
        ax.plot(lengths, means / np.abs(as_numpy(w, float)).mean(), "o-", ms=3, label=label,
                color=(colors or {}).get(label))
    ax.set_xlabel("connection length (grid spacings)")
    ax.set_ylabel("mean |W| / overall mean |W|")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax
