"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def shifted_net():
    """A factory of low-rank networks whose loadings have non-zero means and overlaps, as trained
    ones do (chapters 10-11 tests): ``shifted_net(n_units=300, rank=1, seed=0, shift=0.4)``."""
    from utils.models import LowRankRNN

    def make(n_units: int = 300, rank: int = 1, seed: int = 0, shift: float = 0.4) -> LowRankRNN:
        net = LowRankRNN(n_units, rank, seed=seed)
        with torch.no_grad():
            net.m += shift
            net.n.copy_(0.6 * net.m + 0.5 * net.I + 0.3 * net.n)
        return net

    return make
