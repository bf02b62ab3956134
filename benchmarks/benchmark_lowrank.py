"""Benchmark: time for a low-rank network to reach chapter 10's quality bar on this machine.

Rank one, N = 128, the paper's readout scale (w ~ N(0, 4^2)), Adam lr 5e-3, batch 32, MSE over
the last 15 steps (seed 004, section 2): trains until the running loss (mean of 10 updates) is
below 5e-2, then reports the number of updates, the wall-clock time, the held-out loss and
accuracy. For comparison it times the same updates with a plain autograd loop over the full
N x N matrix (the obvious implementation). Goal: the bar in under 5 s.

Part B (rank two, working memory) may add its bar here.

Run:  python benchmarks/benchmark_lowrank.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import time

import torch

from utils.models import LowRankRNN
from utils.tasks import decision_batch, lowrank_loss
from utils.analysis.lowrank_stats import evaluate_lowrank
from utils.training import train_lowrank
from utils.seeding import set_seed, set_threads


def plain_autograd_seconds_per_update(n_updates: int = 10, threads: int = 1) -> float:
    """Seconds per update of a plain Euler loop with J = m n^T / N, recorded by autograd."""
    torch.set_num_threads(threads)
    net = LowRankRNN(128, rank=1, w_std=4.0, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(1)
    start = None
    for i in range(n_updates + 3):
        if i == 3:
            start = time.perf_counter()
        batch = decision_batch(32, generator=g)
        J = net.m @ net.n.t() / net.n_units
        x = torch.zeros(32, net.n_units)
        zs = []
        for t in range(batch["inputs"].shape[0]):
            x = x + net.alpha * (-x + torch.tanh(x) @ J.t() + batch["inputs"][t] @ net.I.t())
            zs.append(torch.tanh(x) @ net.w / net.n_units)
        loss = lowrank_loss(torch.stack(zs), batch["targets"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    elapsed = (time.perf_counter() - start) / n_updates
    set_threads(2)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="training runs to time (>= 1)")
    args = parser.parse_args()
    set_threads(2)
    validation = decision_batch(2000, generator=torch.Generator().manual_seed(99))
    times = []
    for r in range(args.repeats):
        set_seed(0)
        net = LowRankRNN(128, rank=1, w_std=4.0, seed=0)
        batches = functools.partial(decision_batch, 32, generator=torch.Generator().manual_seed(1))
        start, cpu_start = time.perf_counter(), time.process_time()
        hist = train_lowrank(net, batches, 1000, target_loss=0.05, progress=False)
        times.append(time.perf_counter() - start)
        cpu = time.process_time() - cpu_start
        score = evaluate_lowrank(net, validation)
        print(f"run {r + 1}: {hist.stopped_at} updates, {times[-1]:.2f} s wall, {cpu:.2f} s CPU "
              f"(on a busy machine wall > CPU time) "
              f"({1000 * times[-1] / hist.stopped_at:.1f} ms/update); held-out loss "
              f"{score['loss']:.4f}, accuracy {score['accuracy']:.3f}")
    print(f"rank-1 bar (loss < 5e-2): best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
          f"(goal < 5 s)")
    for threads in (1, 2):
        plain = plain_autograd_seconds_per_update(threads=threads)
        print(f"plain autograd loop with the full N x N matrix, {threads} thread(s): "
              f"{1000 * plain:.1f} ms/update")


if __name__ == "__main__":
    main()
