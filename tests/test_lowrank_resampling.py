"""Chapter 11's like-for-like resampling: exact-overlap draws, the working-memory grid, accuracy by
frequency difference and over many resampled networks."""
import pytest
import torch

from utils.analysis.lowrank_stats import (PAPER_DIFFERENCES, accuracy_by_difference,
                                          connectivity_matrix, resample, resampled_accuracy)
from utils.models import LowRankRNN
from utils.tasks.lowrank_tasks import working_memory_batch, working_memory_grid


def test_exact_overlap_draw(shifted_net):
    net = shifted_net(n_units=128, rank=2, seed=3)
    C = connectivity_matrix(net).double()
    raw = C.T @ C / 128
    for n_units in (128, 512):
        exact = connectivity_matrix(resample(net, n_units=n_units, seed=1, exact=True)).double()
        plain = connectivity_matrix(resample(net, n_units=n_units, seed=1)).double()
        assert torch.allclose(exact.T @ exact / n_units, raw, atol=1e-5)
        assert (plain.T @ plain / n_units - raw).abs().max() > 0.05
    # still a fresh draw: new units, different seeds give different networks
    a = resample(net, seed=1, exact=True)
    assert not torch.allclose(a.m, net.m) and not torch.equal(a.m, resample(net, seed=2, exact=True).m)
    # a given Gaussian is matched exactly too
    mean, cov = torch.zeros(6, dtype=torch.float64), torch.eye(6, dtype=torch.float64)
    d = connectivity_matrix(resample(net, n_units=300, mean=mean, cov=cov, exact=True)).double()
    assert torch.allclose(d.mean(0), mean.float().double(), atol=1e-6)
    assert torch.allclose(d.T @ d / 300, cov, atol=1e-5)
    with pytest.raises(ValueError, match="n_units"):
        resample(net, n_units=6, exact=True)
    with pytest.raises(TypeError, match="exact"):
        resample(net, exact="yes")


def test_working_memory_grid_and_accuracy_by_difference():
    grid = working_memory_grid()
    assert grid["inputs"].shape == (76, 49, 1)
    pairs = set(zip(grid["f1"].tolist(), grid["f2"].tolist()))
    assert len(pairs) == 49
    batch = working_memory_batch(300, generator=torch.Generator().manual_seed(0))
    # the grid trial of a pair is the batch's trial of the same pair
    b = 0
    k = int(((grid["f1"] == batch["f1"][b]) & (grid["f2"] == batch["f2"][b])).nonzero()[0])
    assert torch.equal(grid["inputs"][:, k], batch["inputs"][:, b])
    assert grid["targets"][k] == batch["targets"][b]
    short = working_memory_grid(u2_on=36, u2_off=46)
    assert short["inputs"].shape[0] == 52 and short["inputs"][36, 0, 0] != 0
    # a readout that is right except on the 4 Hz pairs
    T = 76
    z = torch.zeros(T, 49)
    diff = grid["f1"] - grid["f2"]
    z[-5:] = torch.sign(diff) * torch.where(diff.abs() == 4, -1.0, 1.0)
    acc = accuracy_by_difference(z, grid["f1"], grid["f2"])
    assert acc[4.0] == 0.0 and acc[8.0] == acc[24.0] == 1.0
    assert acc["all"] == pytest.approx(30 / 42) and acc["paper"] == 1.0
    assert PAPER_DIFFERENCES == (8.0, 16.0, 24.0)
    with pytest.raises(ValueError, match="f1 and f2"):
        accuracy_by_difference(z, grid["f1"][:3], grid["f2"])
    with pytest.raises(ValueError, match="differ"):
        accuracy_by_difference(z[:, :1], grid["f1"][:1], grid["f1"][:1])


def test_resampled_accuracy():
    net = LowRankRNN(64, 2, seed=0)
    grid = working_memory_grid()
    out = resampled_accuracy(net, grid, n_units=80, seeds=[0, 1, 2])
    assert set(out) == {4.0, 8.0, 12.0, 16.0, 20.0, 24.0, "all", "paper"}
    assert all(v.shape == (3,) for v in out.values())
    with torch.no_grad():
        z = resample(net, n_units=80, seed=1).output(grid["inputs"])
    assert out["all"][1] == accuracy_by_difference(z, grid["f1"], grid["f2"])["all"]
    with pytest.raises(TypeError, match="f1"):
        resampled_accuracy(net, {"inputs": grid["inputs"], "targets": grid["targets"]})
    with pytest.raises(ValueError, match="seeds"):
        resampled_accuracy(net, grid, seeds=[])
