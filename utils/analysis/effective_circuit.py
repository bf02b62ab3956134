"""Effective circuits of low-rank RNNs, and the rank-2 working-memory analyses (chapter 11).

A rank-R network ``tau dx/dt = -x + (1/N) sum_r m_r n_r^T tanh(x) + I u(t)`` started from
``x = 0`` keeps its state in the span of ``m_1 ... m_R`` and ``I`` at all times:
``x(t) = sum_r kappa_r(t) m_r + v(t) I``, where ``tau dv/dt = -v + u`` is the input low-pass
filtered by the membrane and the *latent variables* ``kappa_r`` obey

    tau dkappa_r/dt = -kappa_r + (1/N) sum_i n_{r,i} tanh(x_i).

If the entries of the connectivity vectors are jointly Gaussian across units (zero mean), the
population average becomes a Gaussian integral (Stein's lemma), and the network reduces to the
R-dimensional **effective circuit**

    tau dkappa_r/dt = -kappa_r + <Phi'>(Delta) (sum_s sigma_{n_r m_s} kappa_s + sigma_{n_r I} v),
    z               = <Phi'>(Delta) (sum_r sigma_{m_r w} kappa_r + sigma_{I w} v),

with ``Delta^2`` the variance of ``x_i`` across units (``kappa^T Sigma_mm kappa + 2 v kappa^T
sigma_mI + sigma_I^2 v^2``) and ``<Phi'>(Delta) = E_z[tanh'(Delta z)]``, ``z ~ N(0, 1)``
(:func:`utils.analysis.meanfield.mean_gain`, shared with the rank-one chapter). The project's
rank-2 circuit keeps only the "diagonal" terms (``sigma_{n_1 m_1}``, ``sigma_{n_2 m_2}``, ``sigma_{n_r I}``, ``sigma_{m_r w}`` and the variances):
:meth:`EffectiveCircuit.diagonal`.

Also here, for the rank-2 working-memory chapter: the time constant of a decaying latent variable
(:func:`fit_time_constant`), one trial per stimulus pair (:func:`condition_index`) and a
training curriculum on the delay (:class:`DelayCurriculum`). The
network itself, its training, the Gaussian fit and the latent projection are in
:mod:`utils.models.lowrank`. Everything here is NumPy; tensors are accepted wherever arrays are.

(Longer than the course's ~400-line guide: the circuit, its change of basis, its simulation and
its flow field share one set of validated overlaps and are read together in chapter 11.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .meanfield import mean_gain, population_spread
from ..validation import as_float_array, check_choice, check_real

__all__ = [
    "EffectiveCircuit",
    "CircuitTrajectory",
    "simulate_circuit",
    "flow_field",
    "fit_time_constant",
    "condition_index",
    "PAPER_WM_SIGMAS",
    "PROJECT_WM_SIGMAS",
    "RELEASED_WM_SIGMAS",
]

#: The overlaps the project's statement lists for Dubreuil et al.'s working-memory network; it
#: states no variances and no other overlaps (:meth:`EffectiveCircuit.from_sigmas` takes unit
#: variances and zero for the rest: our assumption).
PROJECT_WM_SIGMAS: dict[str, float] = {
    "sigma_n1m1": 1.0, "sigma_n2m2": 1.0, "sigma_n1I": 0.5, "sigma_n2I": 1.9, "sigma_m1w": 2.8,
    "sigma_m2w": -2.2,
}

#: Old name of :data:`PROJECT_WM_SIGMAS` (the values are the project's, not measured on the paper's network).
PAPER_WM_SIGMAS = PROJECT_WM_SIGMAS

#: The rank-2 working-memory network released with Dubreuil et al. 2022
#: (``romo_rank2_500.pt``, N = 500), measured for chapter 11 with :meth:`EffectiveCircuit.from_vectors`
#: (raw second moments) and :meth:`EffectiveCircuit.eigenbasis` (each m'_r of unit second moment,
#: sigma_{n'_r I} >= 0): a loop of 1.03 (the memory) and one of 0.15 (a leaky latent). (Centred
#: covariances give 1.03, 0.13, 0.58, 2.29, 1.98, -2.07.)
RELEASED_WM_SIGMAS: dict[str, float] = {
    "sigma_n1m1": 1.03, "sigma_n2m2": 0.15, "sigma_n1I": 0.60, "sigma_n2I": 2.37, "sigma_m1w": 2.08,
    "sigma_m2w": -2.10,
}


def _gain(delta: np.ndarray) -> np.ndarray:
    """``<Phi'>(Delta)`` elementwise, always as an array (:func:`utils.analysis.meanfield.mean_gain`)."""
    return np.asarray(mean_gain(delta), dtype=float)


def _vec(name: str, value: Any, length: int) -> np.ndarray:
    arr = as_float_array(name, value, ndim=(0, 1))
    if arr.ndim == 0:
        arr = np.full(length, float(arr))
    if arr.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) for a rank-{length} circuit, "
                         f"got {arr.shape}")
    return arr


@dataclass(frozen=True)
class EffectiveCircuit:
    """The R-dimensional effective circuit of a rank-R network (see the module docstring).

    Attributes:
        sigma_nm: (R, R) array, ``sigma_nm[r, s] = sigma_{n_r m_s}`` (overlap of n_r with m_s).
        sigma_nI: (R,) array, ``sigma_{n_r I}``: how strongly the input drives ``kappa_r``.
        sigma_mw: (R,) array, ``sigma_{m_r w}``: how strongly ``kappa_r`` reaches the readout.
        sigma_mm: (R, R) covariance of the ``m`` vectors (default: identity).
        sigma_mI: (R,) covariances ``sigma_{m_r I}`` (default: 0).
        sigma_I2: variance of the input vector (default 1).
        sigma_Iw: covariance of input and readout vectors (default 0).
        tau: membrane time constant in ms (default 100).
        dt: Euler time step in ms (default 20), ``dt <= tau``.

    Build one with :meth:`from_vectors` (from a trained network's vectors), :meth:`paper` (the
    covariances of Dubreuil et al.'s working-memory network) or directly.
    """

    sigma_nm: np.ndarray
    sigma_nI: np.ndarray
    sigma_mw: np.ndarray
    sigma_mm: np.ndarray | None = None
    sigma_mI: np.ndarray | None = None
    sigma_I2: float = 1.0
    sigma_Iw: float = 0.0
    tau: float = 100.0
    dt: float = 20.0
    rank: int = field(init=False)

    def __post_init__(self) -> None:
        nm = as_float_array("sigma_nm", self.sigma_nm, ndim=(0, 2))
        if nm.ndim == 0:
            nm = nm.reshape(1, 1)
        if nm.shape[0] != nm.shape[1] or nm.shape[0] < 1:
            raise ValueError(f"sigma_nm must be a square (R, R) array, got shape {nm.shape}")
        rank = nm.shape[0]
        mm = np.eye(rank) if self.sigma_mm is None else as_float_array("sigma_mm", self.sigma_mm, ndim=(0, 2))
        if mm.ndim == 0:
            mm = mm.reshape(1, 1)
        if mm.shape != (rank, rank):
            raise ValueError(f"sigma_mm must have shape ({rank}, {rank}), got {mm.shape}")
        if not np.allclose(mm, mm.T):
            raise ValueError("sigma_mm must be symmetric (a covariance matrix)")
        mI = np.zeros(rank) if self.sigma_mI is None else _vec("sigma_mI", self.sigma_mI, rank)
        values = {
            "sigma_nm": nm, "sigma_mm": mm, "sigma_mI": mI,
            "sigma_nI": _vec("sigma_nI", self.sigma_nI, rank),
            "sigma_mw": _vec("sigma_mw", self.sigma_mw, rank),
            "sigma_I2": check_real("sigma_I2", self.sigma_I2, low=0.0),
            "sigma_Iw": check_real("sigma_Iw", self.sigma_Iw),
            "tau": check_real("tau", self.tau, low=0.0, low_open=True),
            "dt": check_real("dt", self.dt, low=0.0, low_open=True),
            "rank": rank,
        }
        if values["dt"] > values["tau"]:
            raise ValueError(f"dt must be <= tau for a stable Euler step, got dt={values['dt']:g}, "
                             f"tau={values['tau']:g}")
        # the joint covariance of (m_1..m_R, I) must be positive semi-definite for Delta to exist
        joint = np.block([[mm, mI[:, None]], [mI[None, :], np.array([[values["sigma_I2"]]])]])
        if np.linalg.eigvalsh(joint).min() < -1e-9 * max(1.0, np.abs(joint).max()):
            raise ValueError("sigma_mm, sigma_mI and sigma_I2 must form a positive semi-definite "
                             "covariance matrix")
        for key, value in values.items():
            object.__setattr__(self, key, value)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_vectors(cls, m: Any, n: Any, I: Any, w: Any, *, tau: float = 100.0,
                     dt: float = 20.0, moments: str = "raw") -> "EffectiveCircuit":
        """Circuit whose overlaps are measured on a network's connectivity vectors.

        Args:
            m, n: (N, R) left and right connectivity vectors (columns m_r, n_r).
            I: (N,) input vector; w: (N,) readout vector (tensors or arrays).
            tau, dt: the network's time constant and Euler step in ms.
            moments: ``"raw"``: ``sigma_ab = (1/N) sum_i a_i b_i``, the sums through which
                ``J = m n^T / N``, the input and the readout act (with them ``Delta^2`` is
                exactly ``(1/N) sum_i x_i^2``); ``"centred"``: covariances normalised by N
                (``np.cov(..., bias=True)``), which drop the ``mean_a mean_b`` part of each
                overlap and describe the network only if its loadings have zero mean.
        """
        m = as_float_array("m", m, ndim=(1, 2))
        n = as_float_array("n", n, ndim=(1, 2))
        m = m[:, None] if m.ndim == 1 else m
        n = n[:, None] if n.ndim == 1 else n
        if m.shape != n.shape:
            raise ValueError(f"m and n must have the same shape (N, R), got {m.shape} and {n.shape}")
        n_units, rank = m.shape
        if n_units < 2:
            raise ValueError(f"m must have at least 2 rows (units), got {n_units}")
        I = as_float_array("I", I, ndim=(1, 2)).reshape(-1)
        w = as_float_array("w", w, ndim=(1, 2)).reshape(-1)
        for name, vec in (("I", I), ("w", w)):
            if vec.shape != (n_units,):
                raise ValueError(f"{name} must have {n_units} entries (one per unit), got {vec.shape}")
        check_choice("moments", moments, ["raw", "centred"])
        loadings = np.column_stack([m, n, I, w])
        if moments == "raw":
            cov = loadings.T @ loadings / n_units
        else:
            cov = np.cov(loadings.T, bias=True)
        mi, ni, ii, wi = slice(0, rank), slice(rank, 2 * rank), 2 * rank, 2 * rank + 1
        return cls(sigma_nm=cov[ni, mi], sigma_nI=cov[ni, ii], sigma_mw=cov[mi, wi],
                   sigma_mm=cov[mi, mi], sigma_mI=cov[mi, ii], sigma_I2=cov[ii, ii],
                   sigma_Iw=cov[ii, wi], tau=tau, dt=dt)

    @classmethod
    def from_model(cls, model: Any, *, moments: str = "raw") -> "EffectiveCircuit":
        """:meth:`from_vectors` applied to a :class:`utils.models.lowrank.LowRankRNN` with one input
        (its ``m``, ``n``, ``I``, ``w``, ``tau`` and ``dt``)."""
        for attr in ("m", "n", "I", "w", "tau", "dt"):
            if not hasattr(model, attr):
                raise TypeError(f"model must be a LowRankRNN (with m, n, I, w, tau, dt), got "
                                f"{type(model).__name__} without '{attr}'")
        if getattr(model.I, "shape", (0, 1))[-1] != 1:
            raise ValueError("model must have exactly one input channel for an effective circuit")
        return cls.from_vectors(model.m, model.n, model.I, model.w, tau=model.tau, dt=model.dt,
                                moments=moments)

    @classmethod
    def from_sigmas(cls, sigmas: Any, *, tau: float = 100.0, dt: float = 20.0) -> "EffectiveCircuit":
        """The project's diagonal rank-2 circuit from named overlaps ``sigma_n1m1, sigma_n2m2, sigma_n1I,
        sigma_n2I, sigma_m1w, sigma_m2w`` (e.g. :data:`PROJECT_WM_SIGMAS`, :data:`RELEASED_WM_SIGMAS`): unit variances,
        all other overlaps zero."""
        if not hasattr(sigmas, "keys"):
            raise TypeError(f"sigmas must be a dict of named overlaps, got {type(sigmas).__name__}")
        missing = [k for k in ("sigma_n1m1", "sigma_n2m2", "sigma_n1I", "sigma_n2I", "sigma_m1w",
                               "sigma_m2w") if k not in sigmas]
        if missing:
            raise ValueError(f"sigmas must contain sigma_n1m1, sigma_n2m2, sigma_n1I, sigma_n2I, sigma_m1w, sigma_m2w; missing {missing}")
        s = sigmas
        return cls(sigma_nm=np.diag([s["sigma_n1m1"], s["sigma_n2m2"]]),
                   sigma_nI=[s["sigma_n1I"], s["sigma_n2I"]],
                   sigma_mw=[s["sigma_m1w"], s["sigma_m2w"]], tau=tau, dt=dt)

    @classmethod
    def paper(cls, *, tau: float = 100.0, dt: float = 20.0) -> "EffectiveCircuit":
        """``from_sigmas(PROJECT_WM_SIGMAS)``: the overlaps the project's statement lists for the
        paper's network (the name is historical; they are not measured on that network)."""
        return cls.from_sigmas(PROJECT_WM_SIGMAS, tau=tau, dt=dt)

    def diagonal(self) -> "EffectiveCircuit":
        """The project's reduced circuit: drop the cross-overlaps ``sigma_{n_r m_s}`` (r != s),
        the covariances among the ``m`` vectors and with ``I``, and ``sigma_{I w}``."""
        return replace(self, sigma_nm=np.diag(np.diag(self.sigma_nm)),
                       sigma_mm=np.diag(np.diag(self.sigma_mm)), sigma_mI=np.zeros(self.rank),
                       sigma_Iw=0.0)

    def change_basis(self, A: Any) -> "EffectiveCircuit":
        """The same network described in new latent coordinates ``kappa' = A^{-1} kappa``.

        ``J = m n^T / N`` is unchanged when ``m -> m A`` and ``n -> n A^{-T}`` for any invertible
        (R, R) matrix ``A``: the latent variables are only defined up to such a change of basis.
        The overlaps transform as ``sigma_n'm' = A^{-1} sigma_nm A``, ``sigma_n'I = A^{-1}
        sigma_nI``, ``sigma_m'w = A^T sigma_mw``, ``Sigma_m'm' = A^T Sigma_mm A`` and
        ``sigma_m'I = A^T sigma_mI``; trajectories satisfy ``kappa = A kappa'``.
        """
        a = as_float_array("A", A, ndim=(2,))
        if a.shape != (self.rank, self.rank):
            raise ValueError(f"A must have shape ({self.rank}, {self.rank}), got {a.shape}")
        if abs(np.linalg.det(a)) < 1e-12:
            raise ValueError("A must be invertible")
        inv = np.linalg.inv(a)
        mm = a.T @ self.sigma_mm @ a
        return replace(self, sigma_nm=inv @ self.sigma_nm @ a, sigma_nI=inv @ self.sigma_nI,
                       sigma_mw=a.T @ self.sigma_mw, sigma_mm=(mm + mm.T) / 2,
                       sigma_mI=a.T @ self.sigma_mI)

    def eigenbasis(self) -> tuple["EffectiveCircuit", np.ndarray]:
        """Coordinates in which the recurrent overlaps are diagonal: ``sigma_n'm' = diag(mu)``.

        The columns of ``A`` are the eigenvectors of ``sigma_nm``, ordered by decreasing
        eigenvalue and scaled so that every new ``m'_r`` has unit variance and ``sigma_{n'_r I}
        >= 0``. Near ``kappa = 0`` (gain 1) mode r then relaxes with time constant
        ``tau / (1 - mu_r)`` (it grows if ``mu_r > 1``).

        Returns:
            ``(circuit, A)``; raises ValueError if the eigenvalues are complex (rotational
            dynamics have no real diagonal form).
        """
        mu, vecs = np.linalg.eig(self.sigma_nm)
        if np.any(np.abs(mu.imag) > 1e-9):
            raise ValueError(f"sigma_nm has complex eigenvalues {mu}: no real basis makes it diagonal")
        order = np.argsort(-mu.real)
        a = vecs.real[:, order]
        a = a / np.sqrt(np.diag(a.T @ self.sigma_mm @ a))
        new = self.change_basis(a)
        flip = np.where(new.sigma_nI < 0, -1.0, 1.0)
        a = a * flip
        return self.change_basis(a), a

    def sigmas(self) -> dict[str, float]:
        """Named covariances, e.g. ``{"sigma_n1m1": ..., "sigma_n2I": ..., "sigma_m1w": ..., "sigma_m1": sd,
        "sigma_I": sd}``: the same convention as the rank-one statistics of
        :func:`utils.analysis.meanfield.rank1_statistics` (``sigma_`` + the two vectors, indexed
        by population when the rank is above one; one name alone is a standard deviation)."""
        out: dict[str, float] = {}
        for r in range(self.rank):
            for s in range(self.rank):
                out[f"sigma_n{r + 1}m{s + 1}"] = float(self.sigma_nm[r, s])
        for r in range(self.rank):
            out[f"sigma_n{r + 1}I"] = float(self.sigma_nI[r])
        for r in range(self.rank):
            out[f"sigma_m{r + 1}w"] = float(self.sigma_mw[r])
        out["sigma_Iw"] = float(self.sigma_Iw)
        for r in range(self.rank):
            out[f"sigma_m{r + 1}I"] = float(self.sigma_mI[r])
        for r in range(self.rank):
            out[f"sigma_m{r + 1}"] = float(np.sqrt(self.sigma_mm[r, r]))
        out["sigma_I"] = float(np.sqrt(self.sigma_I2))
        return out

    # --- dynamics ----------------------------------------------------------------------------

    def _kv(self, kappa: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
        k = as_float_array("kappa", kappa)
        if k.ndim == 0 or k.shape[-1] != self.rank:
            raise ValueError(f"kappa must have shape (..., {self.rank}) for a rank-{self.rank} "
                             f"circuit, got {k.shape}")
        vv = as_float_array("v", v)
        try:
            np.broadcast_shapes(k.shape[:-1], vv.shape)
        except ValueError as err:
            raise ValueError(f"v must broadcast against kappa's leading shape {k.shape[:-1]}, "
                             f"got {vv.shape}") from err
        return k, vv

    def delta(self, kappa: Any, v: Any) -> np.ndarray:
        """Standard deviation of ``x_i`` across units for latent state ``kappa`` (..., R) and
        filtered input ``v`` (...)."""
        k, vv = self._kv(kappa, v)
        return population_spread(k, vv, self.sigma_mm, self.sigma_mI, self.sigma_I2)

    def velocity(self, kappa: Any, v: Any) -> np.ndarray:
        """``tau dkappa/dt`` (shape of ``kappa``): the circuit's flow at ``(kappa, v)``."""
        k, vv = self._kv(kappa, v)
        g = _gain(self.delta(k, vv))[..., None]
        return -k + g * (k @ self.sigma_nm.T + vv[..., None] * self.sigma_nI)

    def readout(self, kappa: Any, v: Any) -> np.ndarray:
        """Output ``z = <Phi'>(Delta) (sum_r sigma_{m_r w} kappa_r + sigma_{I w} v)``."""
        k, vv = self._kv(kappa, v)
        return _gain(self.delta(k, vv)) * (k @ self.sigma_mw + self.sigma_Iw * vv)


@dataclass
class CircuitTrajectory:
    """Result of :func:`simulate_circuit`: ``kappa`` (T, B, R), ``v`` (T, B), ``z`` (T, B)."""

    kappa: np.ndarray
    v: np.ndarray
    z: np.ndarray


def _inputs(u: Any) -> np.ndarray:
    arr = as_float_array("u", u, ndim=(1, 2, 3))
    if arr.ndim == 3:
        if arr.shape[2] != 1:
            raise ValueError(f"u must have one input channel: shape (T, B) or (T, B, 1), got {arr.shape}")
        arr = arr[..., 0]
    elif arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"u must have at least one time step and one trial, got shape {arr.shape}")
    return arr


def simulate_circuit(circuit: EffectiveCircuit, u: Any, *, kappa0: Any = None) -> CircuitTrajectory:
    """Simulate the effective circuit with forward Euler on the same clock as the network.

    With ``alpha = dt / tau`` and starting from ``kappa = kappa0`` (default 0) and ``v = 0``,
    each step applies

        v_t     = (1 - alpha) v_{t-1} + alpha u_t
        kappa_t = kappa_{t-1} + alpha * velocity(kappa_{t-1}, v_{t-1})
        z_t     = readout(kappa_t, v_t)

    which is exactly how ``kappa`` and ``v`` evolve in a network updated as
    ``x_t = (1 - alpha) x_{t-1} + alpha (J tanh(x_{t-1}) + I u_t)``.

    Args:
        circuit: an :class:`EffectiveCircuit`.
        u: inputs, shape (T, B), (T, B, 1) or (T,) (one trial); array or tensor.
        kappa0: initial latent state, shape (R,) or (B, R).

    Returns:
        :class:`CircuitTrajectory` with kappa (T, B, R), v (T, B), z (T, B).
    """
    if not isinstance(circuit, EffectiveCircuit):
        raise TypeError(f"circuit must be an EffectiveCircuit, got {type(circuit).__name__}")
    uu = _inputs(u)
    steps, batch = uu.shape
    rank = circuit.rank
    if kappa0 is None:
        k = np.zeros((batch, rank))
    else:
        k0 = as_float_array("kappa0", kappa0, ndim=(1, 2))
        if k0.shape not in ((rank,), (batch, rank)):
            raise ValueError(f"kappa0 must have shape ({rank},) or ({batch}, {rank}), got {k0.shape}")
        k = np.broadcast_to(k0, (batch, rank)).copy()
    alpha = circuit.dt / circuit.tau
    v = np.zeros(batch)
    kappa = np.empty((steps, batch, rank))
    vs = np.empty((steps, batch))
    for t in range(steps):
        k = k + alpha * circuit.velocity(k, v)
        v = (1.0 - alpha) * v + alpha * uu[t]
        kappa[t], vs[t] = k, v
    return CircuitTrajectory(kappa=kappa, v=vs, z=circuit.readout(kappa, vs))


def flow_field(circuit: EffectiveCircuit, kappa1: Any, kappa2: Any, v: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Flow ``tau dkappa/dt`` of a rank-2 circuit on a grid, at a constant filtered input ``v``.

    Args:
        circuit: a rank-2 :class:`EffectiveCircuit`.
        kappa1, kappa2: 1-D grids of the two latent variables.
        v: the (constant) filtered input.

    Returns:
        ``(d1, d2)``, each of shape ``(len(kappa2), len(kappa1))`` (rows follow ``kappa2``, as
        ``matplotlib.pyplot.streamplot`` expects).
    """
    if not isinstance(circuit, EffectiveCircuit):
        raise TypeError(f"circuit must be an EffectiveCircuit, got {type(circuit).__name__}")
    if circuit.rank != 2:
        raise ValueError(f"flow_field needs a rank-2 circuit, got rank {circuit.rank}")
    k1 = as_float_array("kappa1", kappa1, ndim=(1,))
    k2 = as_float_array("kappa2", kappa2, ndim=(1,))
    v = check_real("v", v)
    grid = np.stack(np.meshgrid(k1, k2), axis=-1)
    vel = circuit.velocity(grid, np.full(grid.shape[:-1], v))
    return vel[..., 0], vel[..., 1]


def fit_time_constant(trace: Any, dt: float) -> float:
    """Time constant (ms) of an exponentially decaying or growing signal (log-linear fit).

    Args:
        trace: (T,) or (T, B) values sampled every ``dt`` ms (e.g. a latent variable during the
            delay, one column per trial). With several trials the fit uses the root-mean-square
            over trials, which follows the same exponential if every trial does.
        dt: sampling step in ms.

    Returns:
        ``tau_fit`` with ``|trace| ~ exp(-t / tau_fit)``: positive for a decay, negative for a
        growth, ``inf`` for a constant signal.
    """
    arr = as_float_array("trace", trace, ndim=(1, 2))
    dt = check_real("dt", dt, low=0.0, low_open=True)
    if arr.shape[0] < 2:
        raise ValueError(f"trace must have at least 2 time points, got {arr.shape[0]}")
    rms = np.sqrt(np.mean(arr.reshape(arr.shape[0], -1) ** 2, axis=1))
    if np.any(rms <= 0):
        raise ValueError("trace must be non-zero at every time point to fit an exponential")
    slope = np.polyfit(np.arange(len(rms)) * dt, np.log(rms), 1)[0]
    return float("inf") if slope == 0 else float(-1.0 / slope)


def condition_index(f1: Any, f2: Any) -> tuple[np.ndarray, np.ndarray]:
    """The first trial of every ``(f1, f2)`` pair in a batch, sorted by f1 then f2.

    Args:
        f1, f2: (B,) stimulus frequencies of each trial (e.g. ``batch["f1"]``, ``batch["f2"]``).

    Returns:
        ``(index, pairs)``: trial indices (K,) and the pairs (K, 2).
    """
    a = as_float_array("f1", f1, ndim=(1,))
    b = as_float_array("f2", f2, ndim=(1,))
    if a.shape != b.shape:
        raise ValueError(f"f1 and f2 must have the same length, got {a.shape} and {b.shape}")
    pairs, index = np.unique(np.column_stack([a, b]), axis=0, return_index=True)
    return index, pairs


