"""Seeds, CPU threads and device selection: call :func:`set_seed` at the top of a notebook."""

from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator

import numpy as np
import torch

from .validation import check_choice, check_int

__all__ = ["set_seed", "get_device", "set_threads", "one_thread", "DEFAULT_THREADS"]

#: One thread. The course's networks step through time on small (batch x units) tensors, where a
#: second thread gains about 10% on a quiet machine (34 vs 30 ms per update, N=100, batch 64,
#: 100 steps) but loses 30x as soon as another process competes for the cores (two 2-thread runs
#: side by side on 2 cores: 880 ms per update each; two 1-thread runs: 30 ms). Tests run two
#: notebooks at once, and a student's laptop is rarely idle.
DEFAULT_THREADS = 1


def set_seed(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and PyTorch so that a notebook re-runs identically.

    Also switches PyTorch to deterministic algorithms where it offers them.
    """
    seed = check_int("seed", seed, min_value=0, max_value=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(n: int = DEFAULT_THREADS) -> int:
    """Limit PyTorch to ``n`` CPU threads (default :data:`DEFAULT_THREADS`, one). Returns n."""
    n = check_int("n", n, min_value=1, max_value=max(1, os.cpu_count() or 1) * 4)
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the enclosed code on one PyTorch thread, then restore the previous number.

    Used around time loops on small (batch x units) tensors, where splitting work over threads
    costs more in synchronisation than it gains (on a busy 2-core machine a 2-thread ``tanh`` of
    32 x 128 numbers was measured at 17 ms against 7 us on one thread).
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def get_device(prefer: str = "cpu") -> torch.device:
    """Return the device to train on.

    ``prefer="cpu"`` (the default) always returns the CPU: the course's networks are small and
    CPU runs are reproducible. ``prefer="auto"`` returns CUDA when available.
    """
    check_choice("prefer", prefer, ["cpu", "auto", "cuda"])
    if prefer == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if prefer == "cuda":
        raise ValueError("prefer='cuda' but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device("cpu")
