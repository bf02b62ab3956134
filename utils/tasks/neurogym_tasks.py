"""Reproducible batches of trials from neurogym tasks (introduced in chapter 1).

neurogym's own ``Dataset`` is only reproducible when the environment's private RNG is seeded, and
its gymnasium wrappers print deprecation warnings. :class:`NeurogymTask` builds the environment
once, keeps only ``env.unwrapped``, seeds it, and returns trial-aligned batches: every column of
a batch is one whole trial (shorter trials padded at the end), with the trial's parameters (for
example its coherence) kept for analysis.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any, Sequence

import numpy as np
import torch

from ..validation import check_int, check_real
from .batch import TaskBatch

__all__ = ["TaskBatch", "NeurogymTask", "make_env", "batch_sampler"]


@contextlib.contextmanager
def _quiet():
    """Silence gymnasium's and neurogym's warnings and log lines while an env is built."""
    logger = logging.getLogger("gymnasium")
    old = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                yield
            finally:
                logger.setLevel(old)


def make_env(name: str, **kwargs: Any):
    """Build neurogym task ``name`` and return its unwrapped environment (no wrapper warnings)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a neurogym task name (str), got {type(name).__name__}")
    with _quiet():
        import neurogym as ngym
        try:
            env = ngym.make(name, **kwargs)
        except Exception as err:  # unknown name or bad keyword: say which
            try:  # neurogym 2.3 keeps the list in neurogym.envs.registration
                from neurogym.envs.registration import all_envs
                known = sorted(all_envs())
            except Exception:  # an older or newer neurogym: no hint rather than a second error
                known = []
            hint = f"; known tasks include {known[:8]}..." if known else ""
            raise ValueError(f"could not build neurogym task {name!r} with {kwargs}: {err}{hint}") from err
    return env.unwrapped


def _check_supported(name: str, env: Any, env_kwargs: dict) -> None:
    """Refuse, with a clear message, the neurogym tasks a :class:`NeurogymTask` cannot batch.

    A batch needs trials that are computed in advance (``new_trial`` fills ``ob`` and ``gt``),
    observations that are a flat vector and a discrete set of actions. Some registered tasks are
    step-by-step (``Bandit``, ``DawTwoStep``, ``EconomicDecisionMaking``, ``Null``) or have a
    continuous action space (``ReachingDelayResponse``, ``SpatialSuppressMotion``).
    """
    space = env.action_space
    if not hasattr(space, "n"):
        raise ValueError(f"{name} has a continuous action space ({type(space).__name__}); "
                         f"NeurogymTask supports tasks with discrete actions (a choice per time "
                         f"step), e.g. 'PerceptualDecisionMaking-v0'")
    shape = getattr(env.observation_space, "shape", None)
    if shape is None or len(shape) != 1:
        raise ValueError(f"{name} has observations of shape {shape}; NeurogymTask supports flat "
                         f"observation vectors")
    spare = make_env(name, **env_kwargs)  # a spare copy: the task's own trial sequence is untouched
    spare.seed(0)
    with _quiet():
        spare.new_trial()
    if getattr(spare, "ob", None) is None or getattr(spare, "gt", None) is None:
        raise ValueError(f"{name} does not compute its trials in advance (no observation and "
                         f"ground-truth arrays after new_trial), so it cannot be batched; "
                         f"NeurogymTask supports trial-based tasks such as "
                         f"'PerceptualDecisionMaking-v0' or 'DualDelayMatchSample-v0'")


class NeurogymTask:
    """A seeded neurogym task that yields :class:`TaskBatch` objects.

    Args:
        name: neurogym task id, e.g. ``"PerceptualDecisionMaking-v0"``.
        seed: seed of the environment's private RNG (the same seed gives the same trials).
        answer_periods: names of the periods in which an answer is due; their steps are True in
            every batch's ``decision`` mask. Default: ``("decision",)`` if the task has a
            decision period, else every period whose name starts with ``"test"`` (in neurogym
            2.3.1, DualDelayMatchSample-v0 has no decision period: answers are due in ``test1``
            and ``test2``, each with its own ground truth). A task with neither gets an all-False
            mask, which :func:`utils.analysis.answers.answer_accuracy` refuses.
        **env_kwargs: passed to the environment (``dt``, ``timing``, ``cohs``, ...).

    Example:
        >>> task = NeurogymTask("PerceptualDecisionMaking-v0", seed=1, dt=20)
        >>> batch = task.batch(16)
    """

    def __init__(self, name: str, seed: int = 0, *, answer_periods: Sequence[str] | None = None,
                 **env_kwargs: Any) -> None:
        self.name = name
        self.seed = check_int("seed", seed, min_value=0)
        if answer_periods is not None:
            if isinstance(answer_periods, str) or not all(isinstance(p, str) for p in answer_periods):
                raise TypeError("answer_periods must be a sequence of period names (str), e.g. "
                                f"('test1', 'test2'), got {answer_periods!r}")
            answer_periods = tuple(answer_periods)
        self.answer_periods = answer_periods
        if "dt" in env_kwargs:
            check_real("dt", env_kwargs["dt"], low=0.0, low_open=True)
        timing = env_kwargs.get("timing")
        if timing is not None:
            if not isinstance(timing, dict):
                raise TypeError(f"timing must be a dict of period durations in ms, got "
                                f"{type(timing).__name__}")
            for period, value in timing.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    check_real(f"timing[{period!r}]", value, low=0.0)
        self.env_kwargs = env_kwargs
        self._trial_keys: set[str] | None = None
        self.env = make_env(name, **env_kwargs)
        _check_supported(name, self.env, env_kwargs)
        self.env.seed(self.seed)
        self.n_input = int(self.env.observation_space.shape[0])
        self.n_output = int(self.env.action_space.n)
        self.dt = float(self.env.dt)

    def reseed(self, seed: int) -> "NeurogymTask":
        """Restart the trial sequence from ``seed``; returns self."""
        self.seed = check_int("seed", seed, min_value=0)
        self.env.seed(self.seed)
        return self

    def batch(self, batch_size: int, **trial_kwargs: Any) -> TaskBatch:
        """Generate ``batch_size`` new trials (optionally with fixed trial parameters)."""
        batch_size = check_int("batch_size", batch_size, min_value=1)
        if trial_kwargs:
            if self._trial_keys is None:  # what this task draws per trial, from a spare copy
                spare = make_env(self.name, **self.env_kwargs)
                spare.seed(0)
                with _quiet():
                    self._trial_keys = set(spare.new_trial())
            unknown = sorted(set(trial_kwargs) - self._trial_keys)
            if unknown:
                raise ValueError(f"{self.name} trials have no parameter {unknown[0]!r}; the "
                                 f"trial parameters are {sorted(self._trial_keys)}")
        obs, gts, decs, trials = [], [], [], []
        with _quiet():
            for _ in range(batch_size):
                trial = dict(self.env.new_trial(**trial_kwargs))
                obs.append(np.asarray(self.env.ob, dtype=np.float32))
                gts.append(np.asarray(self.env.gt, dtype=np.int64).reshape(len(self.env.ob), -1)[:, 0])
                dec = np.zeros(len(self.env.ob), dtype=bool)
                starts = getattr(self.env, "start_ind", {})
                if self.answer_periods is None:
                    periods = (["decision"] if "decision" in starts
                               else [p for p in starts if p.startswith("test")])
                else:
                    unknown = [p for p in self.answer_periods if p not in starts]
                    if unknown:
                        raise ValueError(f"answer_periods must be periods of {self.name}, one of "
                                         f"{list(starts)}; got {unknown}")
                    periods = self.answer_periods
                for p in periods:
                    dec[starts[p]: self.env.end_ind[p]] = True
                decs.append(dec)
                trials.append({k: (v.item() if isinstance(v, np.generic) else v)
                               for k, v in trial.items()})
        T = max(len(o) for o in obs)
        inputs = np.zeros((T, batch_size, self.n_input), dtype=np.float32)
        targets = np.zeros((T, batch_size), dtype=np.int64)
        valid = np.zeros((T, batch_size), dtype=bool)
        decision = np.zeros((T, batch_size), dtype=bool)
        for i, (o, g, d) in enumerate(zip(obs, gts, decs)):
            inputs[: len(o), i] = o
            targets[: len(g), i] = g
            valid[: len(o), i] = True
            decision[: len(d), i] = d
        return TaskBatch(torch.from_numpy(inputs), torch.from_numpy(targets),
                         torch.from_numpy(valid), torch.from_numpy(decision), trials)

    def __repr__(self) -> str:
        return f"NeurogymTask({self.name!r}, seed={self.seed}, {self.env_kwargs})"


def batch_sampler(pool: TaskBatch, batch_size: int, seed: int = 0):
    """Return a function that draws random training batches from a pre-generated trial pool.

    Generating neurogym trials costs about 10 ms per 64 trials; drawing from a pool of a few
    thousand trials costs almost nothing and stays reproducible (own seeded generator).
    """
    if not isinstance(pool, TaskBatch):
        raise TypeError(f"pool must be a TaskBatch (e.g. task.batch(4096)), got {type(pool).__name__}")
    batch_size = check_int("batch_size", batch_size, min_value=1, max_value=len(pool))
    gen = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))

    def draw() -> TaskBatch:
        return pool.select(torch.randint(len(pool), (batch_size,), generator=gen))

    return draw
