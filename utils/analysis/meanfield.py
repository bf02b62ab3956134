"""Mean-field reduction of a rank-one network to a one-dimensional circuit (chapter 10, project steps 7-8).

The network's state is ``x = kappa m + v I`` and its recurrent input is ``kappa_rec = (1/N)
sum_i n_i phi(x_i)``. If the units' loadings ``(m_i, n_i, I_i, w_i)`` are samples of a zero-mean
Gaussian, Stein's lemma turns this population average into

.. math::

    \\langle n_i \\phi(x_i) \\rangle = \\langle\\Phi'\\rangle(\\Delta)\\,
    (\\sigma_{mn} \\kappa + \\sigma_{nI} v), \\qquad
    \\Delta^2 = \\sigma_m^2 \\kappa^2 + 2\\sigma_{mI}\\kappa v + \\sigma_I^2 v^2,

with the population-averaged gain

.. math::

    \\langle\\Phi'\\rangle(\\Delta) = \\frac{1}{\\sqrt{2\\pi}} \\int \\phi'(\\Delta z)\\, e^{-z^2/2}\\, dz.

(The project prints the prefactor as ``1/(2 pi)``; the Gaussian density needs ``1/sqrt(2 pi)``,
so that ``<Phi'>(0) = phi'(0) = 1``.) Hence the reduced circuit, in units of ``tau``:

.. math::

    \\frac{d\\kappa}{dt} = -\\kappa + \\tilde\\sigma_{mn}\\kappa + \\tilde\\sigma_{nI} v, \\qquad
    \\tau \\frac{dv}{dt} = -v + u, \\qquad \\tilde\\sigma_{ab} = \\sigma_{ab}\\langle\\Phi'\\rangle(\\Delta),

and the readout ``z = <Phi'>(Delta) (sigma_mw kappa + sigma_Iw v)``.

Which sigmas: the network uses ``J = m n^T / N`` through the sums ``(1/N) sum_i a_i b_i``, and
trained loadings have non-zero means. The circuit is therefore built from these *raw second
moments* (``rank1_statistics(net, moments="raw")``); centred covariances drop the
``mean_a mean_b`` part of every overlap. ``Delta`` has one definition,
:func:`population_spread`, shared with the rank-R circuit of chapter 11. The project writes
``u`` in ``Delta``; the state's coordinate along ``I`` is the filtered input ``v``, which is what
we use (the two differ only during the first ~tau after the input changes).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import integrate, optimize

from ..validation import check_choice, check_int, check_real

__all__ = [
    "PAPER_RANK1",
    "PROJECT_RANK1",
    "RELEASED_RANK1",
    "mean_gain",
    "population_spread",
    "rank1_statistics",
    "kappa_velocity",
    "simulate_rank1",
    "fixed_points",
]

#: The overlaps the project's statement lists for Dubreuil et al.'s decision network: sigma_mn 1.4,
#: sigma_nI 2.6, sigma_mw 2.1 and unit sigma_n, sigma_I, sigma_w. It gives no sigma_m,
#: sigma_mI or sigma_Iw: the values 1, 0 and 0 here are our assumption (Delta depends on sigma_m).
PROJECT_RANK1: dict[str, float] = {
    "sigma_mn": 1.4, "sigma_nI": 2.6, "sigma_mw": 2.1, "sigma_Iw": 0.0, "sigma_mI": 0.0,
    "sigma_m": 1.0, "sigma_n": 1.0, "sigma_I": 1.0, "sigma_w": 1.0,
}

#: Old name of :data:`PROJECT_RANK1` (the values are the project's, not measured on the paper's network).
PAPER_RANK1 = PROJECT_RANK1

#: Raw second moments (1/N) sum_i a_i b_i of the rank-one decision network released with
#: Dubreuil et al. 2022 (``rdm_lr_fig2.pt``, N = 512; input and readout include their trained
#: scales), measured for chapter 10. Its sigma_nI and sigma_mw are both negative (their product,
#: the meaningful sign, is positive).
RELEASED_RANK1: dict[str, float] = {
    "sigma_mn": 1.32, "sigma_nI": -0.91, "sigma_mw": -2.45, "sigma_Iw": -0.06, "sigma_mI": -0.49,
    "sigma_nw": -0.73, "sigma_m": 1.44, "sigma_n": 1.35, "sigma_I": 1.69, "sigma_w": 6.02,
}

_NODES: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
_Y_MAX = 25.0  # phi'(y) = 1/cosh(y)^2 < 1e-21 beyond |y| = 25


def _nodes(kind: str, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    if (kind, n_points) not in _NODES:
        if kind == "hermite":
            z, wts = hermegauss(n_points)  # weight exp(-z^2 / 2): sum(wts) = sqrt(2 pi)
            _NODES[kind, n_points] = (z, wts / math.sqrt(2.0 * math.pi))
        else:
            y, wts = np.polynomial.legendre.leggauss(n_points)
            _NODES[kind, n_points] = (_Y_MAX * y, _Y_MAX * wts)
    return _NODES[kind, n_points]


def _gauss_gain(d: np.ndarray, n_points: int) -> np.ndarray:
    """Gauss-Hermite in z for Delta < 1 (smooth integrand); for Delta >= 1 the integrand
    phi'(Delta z) is a peak of width 1/Delta, which polynomials in z resolve badly, so integrate
    in y = Delta z instead: E = int phi'(y) N(y; 0, Delta^2) dy with Gauss-Legendre on |y| < 25."""
    z, wz = _nodes("hermite", n_points)
    y, wy = _nodes("legendre", 2 * n_points)
    small = d < 1.0
    out = np.empty_like(d)
    out[small] = _dtanh(d[small][..., None] * z) @ wz
    big = d[~small][..., None]
    density = np.exp(-0.5 * (y / big) ** 2) / (big * math.sqrt(2.0 * math.pi))
    out[~small] = (_dtanh(y) * density) @ wy
    return out


def _dtanh(x: np.ndarray) -> np.ndarray:
    return 1.0 / np.cosh(np.clip(x, -300.0, 300.0)) ** 2


def mean_gain(delta: Any, *, method: str = "hermite", n_points: int = 101) -> Any:
    """Population-averaged gain ``<Phi'>(Delta) = E[phi'(Delta z)]``, ``z ~ N(0, 1)``, ``phi = tanh``.

    Args:
        delta: Delta >= 0, a number or an array (evaluated elementwise).
        method: ``"hermite"`` (Gaussian quadrature, vectorised: Gauss-Hermite with ``n_points``
            nodes for Delta < 1, Gauss-Legendre in ``y = Delta z`` for Delta >= 1, where the
            integrand is a narrow peak; accurate to ~1e-9 over Delta in [0, 1000]) or ``"quad"`` (scipy's adaptive
            ``integrate.quad``, one call per value; the slow reference).
        n_points: number of quadrature nodes for ``"hermite"`` (>= 2).

    Returns:
        a float for a scalar ``delta``, else an array of the same shape. ``mean_gain(0) == 1``.
    """
    check_choice("method", method, ["hermite", "quad"])
    n_points = check_int("n_points", n_points, min_value=2, max_value=400)
    try:
        d = np.asarray(delta, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"delta must be a number or an array of numbers, got {type(delta).__name__}") from None
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("delta must be finite and >= 0 (it is a standard deviation)")
    if method == "quad":
        def one(x: float) -> float:
            val, _ = integrate.quad(lambda z: _dtanh(x * z) * math.exp(-z * z / 2.0), -np.inf, np.inf)
            return val / math.sqrt(2.0 * math.pi)
        out = np.vectorize(one, otypes=[float])(d)
    else:
        out = _gauss_gain(d.reshape(-1), n_points).reshape(d.shape)
    return float(out) if np.ndim(delta) == 0 else out


def population_spread(kappa: Any, v: Any, sigma_mm: Any, sigma_mI: Any, sigma_I2: float) -> np.ndarray:
    """``Delta``: the root-mean-square of ``x_i = sum_r kappa_r m_ri + v I_i`` over the units.

    The one definition of Delta in the course, used by the rank-one circuit of chapter 10
    (:func:`kappa_velocity`, :func:`simulate_rank1`) and by the rank-R circuit of chapter 11
    (:meth:`utils.analysis.effective_circuit.EffectiveCircuit.delta`):

    ``Delta^2 = kappa^T Sigma_mm kappa + 2 v kappa^T sigma_mI + sigma_I^2 v^2``,

    with the second moments ``Sigma_mm`` (R, R), ``sigma_mI`` (R,) and ``sigma_I2`` of the
    loadings. With raw second moments ((1/N) sum_i a_i b_i, what the network's dynamics use)
    ``Delta^2`` is exactly ``(1/N) sum_i x_i^2``.

    Args:
        kappa: latent state, shape (..., R) (R = 1: a trailing axis of 1 or none, see below).
        v: filtered input, broadcasting against ``kappa``'s leading shape.
        sigma_mm: (R, R) second moments of the m vectors (a number for R = 1).
        sigma_mI: (R,) second moments of the m vectors with I (a number for R = 1).
        sigma_I2: second moment of I (>= 0).

    Returns:
        Delta, shape ``kappa.shape[:-1]`` broadcast with ``v`` (for scalar ``sigma_mm`` a
        rank-one Delta of ``kappa``'s own shape).
    """
    mm = np.asarray(sigma_mm, dtype=float)
    mI = np.asarray(sigma_mI, dtype=float)
    k = np.asarray(kappa, dtype=float)
    vv = np.asarray(v, dtype=float)
    if mm.ndim == 0:  # rank one, kappa without a rank axis
        if mI.ndim != 0:
            raise ValueError("sigma_mI must be a number when sigma_mm is a number (rank one)")
        var = mm * k ** 2 + 2.0 * mI * vv * k + sigma_I2 * vv ** 2
    else:
        if mm.ndim != 2 or mm.shape[0] != mm.shape[1] or mI.shape != (mm.shape[0],):
            raise ValueError(f"sigma_mm must be (R, R) and sigma_mI (R,), got {mm.shape} and {mI.shape}")
        if k.ndim == 0 or k.shape[-1] != mm.shape[0]:
            raise ValueError(f"kappa must have shape (..., {mm.shape[0]}), got {k.shape}")
        var = (np.einsum("...r,rs,...s->...", k, mm, k) + 2.0 * vv * (k @ mI)
               + sigma_I2 * vv ** 2)
    # a positive semi-definite moment matrix gives var >= 0; clip rounding errors only
    return np.sqrt(np.maximum(var, 0.0))


def rank1_statistics(source: Any, *, moments: str = "raw") -> dict[str, float]:
    """Overlaps of a rank-one network's loadings, named as in the project.

    Args:
        source: a rank-one :class:`~utils.models.lowrank.LowRankRNN` with one input, or a
            (4, 4) matrix of second moments over ``(m, n, I, w)``.
        moments: for a network, ``"raw"``: ``sigma_ab = (1/N) sum_i a_i b_i``, the overlaps
            the dynamics use (``J = m n^T / N`` acts through exactly these sums), or
            ``"centred"``: the unbiased sample covariances of :func:`fit_gaussian` (subtract
            the means first; the two differ by ``mean_a mean_b``).

    Returns:
        ``{"sigma_mn", "sigma_nI", "sigma_mw", "sigma_Iw", "sigma_mI", "sigma_nw"}`` (second
        moments) and ``{"sigma_m", "sigma_n", "sigma_I", "sigma_w"}`` (their square roots on the
        diagonal).
    """
    from ..models.lowrank import LowRankRNN
    from .lowrank_stats import connectivity_matrix, fit_gaussian

    check_choice("moments", moments, ["raw", "centred"])
    if isinstance(source, LowRankRNN):
        if source.rank != 1 or source.n_input != 1:
            raise ValueError(f"source must be a rank-one network with one input, got rank="
                             f"{source.rank}, n_input={source.n_input}")
        if moments == "raw":
            loadings = connectivity_matrix(source).double()
            cov = (loadings.t() @ loadings / loadings.shape[0]).numpy()
        else:
            cov = fit_gaussian(source)[1].numpy()
    else:
        try:
            cov = np.asarray(source, dtype=float)
        except (TypeError, ValueError):
            raise TypeError("source must be a LowRankRNN or a (4, 4) covariance matrix") from None
        if cov.shape != (4, 4):
            raise ValueError(f"source must be a LowRankRNN or a (4, 4) covariance matrix over "
                             f"(m, n, I, w), got shape {cov.shape}")
    names = ["m", "n", "I", "w"]
    stats = {f"sigma_{names[i]}": float(np.sqrt(max(cov[i, i], 0.0))) for i in range(4)}
    for a, b in [("m", "n"), ("n", "I"), ("m", "w"), ("I", "w"), ("m", "I"), ("n", "w")]:
        stats[f"sigma_{a}{b}"] = float(cov[names.index(a), names.index(b)])
    return stats


def _stat(stats: Mapping[str, float], key: str) -> float:
    if key not in stats:
        raise ValueError(f"stats must contain {key!r} (see rank1_statistics / PROJECT_RANK1); "
                         f"got keys {sorted(stats)}")
    return check_real(f"stats[{key!r}]", stats[key])


def _rank1_delta(kappa: Any, v: Any, stats: Mapping[str, float]) -> np.ndarray:
    return population_spread(kappa, v, _stat(stats, "sigma_m") ** 2, _stat(stats, "sigma_mI"),
                             _stat(stats, "sigma_I") ** 2)


def kappa_velocity(kappa: Any, v: Any, stats: Mapping[str, float], *,
                   gain: Callable[[Any], Any] | None = None, v_delta: Any = None) -> Any:
    """``d kappa / dt`` of the reduced circuit, in units of 1/tau:
    ``-kappa + <Phi'>(Delta) (sigma_mn kappa + sigma_nI v)``, with ``Delta`` from
    :func:`population_spread` (``Delta^2 = sigma_m^2 kappa^2 + 2 sigma_mI kappa v + sigma_I^2 v^2``).
    Broadcasts over arrays.

    ``stats`` needs ``sigma_mn``, ``sigma_nI``, ``sigma_m``, ``sigma_I`` and ``sigma_mI``
    (e.g. from :func:`rank1_statistics`, or :data:`PROJECT_RANK1`). ``gain`` replaces
    :func:`mean_gain` (e.g. a student's version, or ``numpy.ones_like`` for the linear circuit).
    ``v_delta``, if given, is the input used inside ``Delta`` instead of ``v`` (the project
    writes the raw input ``u`` there).
    """
    if not isinstance(stats, Mapping):
        raise TypeError(f"stats must be a dict of covariances, got {type(stats).__name__}")
    gain = mean_gain if gain is None else gain
    kappa = np.asarray(kappa, dtype=float)
    v = np.asarray(v, dtype=float)
    v_d = v if v_delta is None else np.asarray(v_delta, dtype=float)
    delta = _rank1_delta(kappa, v_d, stats)
    g = np.asarray(gain(delta), dtype=float)
    out = -kappa + g * (_stat(stats, "sigma_mn") * kappa + _stat(stats, "sigma_nI") * v)
    return float(out) if out.ndim == 0 else out


def simulate_rank1(u: Any, stats: Mapping[str, float], *, tau: float = 100.0, dt: float = 20.0,
                   kappa0: float = 0.0, gain: Callable[[Any], Any] | None = None,
                   delta_input: str = "v") -> dict[str, np.ndarray]:
    """Simulate the reduced circuit with the network's Euler scheme.

    ``v_{t+1} = v_t + a (u_t - v_t)``, ``kappa_{t+1} = kappa_t + a * kappa_velocity(kappa_t, v_t)``
    with ``a = dt / tau``, starting from ``v = 0`` and ``kappa = kappa0``; entry t of the result
    is the state after step t, like :meth:`utils.models.LowRankRNN.forward`.

    Args:
        u: inputs, shape (T,), (T, B) or (T, B, 1) (numpy or torch).
        stats: covariances, from :func:`rank1_statistics` or :data:`PAPER_RANK1`.
        delta_input: which input enters ``Delta``: ``"v"`` (the filtered input, the state's
            actual coordinate along ``I``; default) or ``"u"`` (the raw input, as the project's statement
            writes it).

    Returns:
        dict with ``kappa``, ``v`` and the readout ``z = <Phi'>(Delta)(sigma_mw kappa +
        sigma_Iw v)``, each of shape (T, B) (B = 1 for a 1-D ``u``).
    """
    if hasattr(u, "detach"):
        u = u.detach().cpu().numpy()
    u = np.asarray(u, dtype=float)
    if u.ndim == 3 and u.shape[-1] == 1:
        u = u[..., 0]
    if u.ndim == 1:
        u = u[:, None]
    if u.ndim != 2 or u.shape[0] < 1 or not np.all(np.isfinite(u)):
        raise ValueError(f"u must be finite with shape (T,), (T, B) or (T, B, 1), got {u.shape}")
    tau = check_real("tau", tau, low=0.0, low_open=True)
    dt = check_real("dt", dt, low=0.0, low_open=True)
    if dt > tau:
        raise ValueError(f"dt must satisfy 0 < dt <= tau, got dt={dt:g} > tau={tau:g}")
    kappa0 = check_real("kappa0", kappa0)
    check_choice("delta_input", delta_input, ["v", "u"])
    a = dt / tau
    gain = mean_gain if gain is None else gain
    T, B = u.shape
    kappa = np.full(B, kappa0)
    v = np.zeros(B)
    ks, vs, zs = (np.empty((T, B)) for _ in range(3))
    _rank1_delta(0.0, 0.0, stats)  # every key Delta needs is there
    s_mw, s_Iw = _stat(stats, "sigma_mw"), stats.get("sigma_Iw", 0.0)
    for t in range(T):
        v_delta = v if delta_input == "v" else u[t]  # "u": the input presented at this step
        kappa = kappa + a * np.asarray(kappa_velocity(kappa, v, stats, gain=gain, v_delta=v_delta))
        v = v + a * (u[t] - v)
        ks[t], vs[t] = kappa, v
        v_delta = v if delta_input == "v" else u[t]
        g = np.asarray(gain(_rank1_delta(kappa, v_delta, stats)), dtype=float)
        zs[t] = g * (s_mw * kappa + s_Iw * v)
    return {"kappa": ks, "v": vs, "z": zs}


def fixed_points(velocity: Callable[[float], float], *, kappa_range: tuple[float, float] = (-4.0, 4.0),
                 n_starts: int = 41, tol: float = 1e-8, merge: float = 1e-3) -> list[dict[str, Any]]:
    """Fixed points of a 1-D flow ``d kappa/dt = velocity(kappa)`` found by minimising its square.

    ``scipy.optimize.minimize`` (L-BFGS-B, a gradient method: it descends into the nearest
    minimum, where a simplex method can step over it) starts from ``n_starts`` points spread
    over ``kappa_range``;
    minima with ``velocity^2 < tol`` are fixed points (nearby ones, closer than ``merge``, are
    merged). Stability from the slope ``d velocity / d kappa`` (central difference): negative =
    stable, positive = unstable, ~0 = marginal (e.g. on a line attractor).

    Returns:
        a list sorted by kappa of ``{"kappa", "slope", "stability"}``.
    """
    if not callable(velocity):
        raise TypeError("velocity must be a function kappa -> d kappa / dt")
    lo, hi = (check_real("kappa_range[0]", kappa_range[0]), check_real("kappa_range[1]", kappa_range[1]))
    if not lo < hi:
        raise ValueError(f"kappa_range must be (low, high) with low < high, got {kappa_range}")
    n_starts = check_int("n_starts", n_starts, min_value=1)
    tol = check_real("tol", tol, low=0.0, low_open=True)
    merge = check_real("merge", merge, low=0.0, low_open=True)

    def energy(k: np.ndarray) -> float:
        return float(velocity(float(k[0]))) ** 2

    found: list[float] = []
    for k0 in np.linspace(lo, hi, n_starts):
        res = optimize.minimize(energy, x0=[k0], method="L-BFGS-B", bounds=[(lo, hi)],
                                options={"ftol": 1e-20, "gtol": 1e-14, "maxiter": 500})
        k = float(res.x[0])
        if res.fun < tol and lo - merge <= k <= hi + merge and all(abs(k - f) > merge for f in found):
            found.append(k)
    points = []
    for k in sorted(found):
        h = 1e-5
        slope = (float(velocity(k + h)) - float(velocity(k - h))) / (2 * h)
        stability = "stable" if slope < -1e-6 else "unstable" if slope > 1e-6 else "marginal"
        points.append({"kappa": k, "slope": slope, "stability": stability})
    return points
