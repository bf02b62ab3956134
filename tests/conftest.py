"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    yield


@pytest.fixture
def root() -> Path:
    return ROOT
