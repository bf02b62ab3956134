"""Benchmark: the course's light-GRU (chapter 4) against torch.nn.GRU of the same size.

Trains each model (forward + backward + Adam step) on random inputs of the chapter's shape
(64 units, batch 32, 80 time steps = two DualDelayMatchSample trials at dt = 100 ms, 7 inputs,
3 outputs) in the same run on one thread (``--threads`` to change), and prints the time per update
and the ratio to ``torch.nn.GRU``. The goal for the light-GRU's hand-written backward pass is at
most 2x ``torch.nn.GRU`` (which has one more gate but runs its time loop in C++). The same
recurrence with its time loop recorded by autograd is timed too, to show what the hand-written
backward pass buys.

Run:  python benchmarks/benchmark_light_gru.py [--repeats 30] [--n 64] [--batch 32] [--steps 80]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from utils.models.light_gru import LightGRU
from utils.seeding import set_seed, set_threads


class AutogradLoopLightGRU(LightGRU):
    """Same model with the time loop recorded by autograd (for comparison only)."""

    def forward(self, u, h0=None):
        drive = self.input_drive(u)
        w = self.recurrent_matrices()
        n = self.n_units
        h = drive.new_zeros(drive.shape[1], n)
        states = []
        for t in range(drive.shape[0]):
            g = drive[t] + h @ w.t()
            z = torch.sigmoid(g[:, :n])
            h = z * h + (1 - z) * torch.relu(g[:, n:])
            states.append(h)
        states = torch.stack(states)
        return self.readout(states), states


class TorchGRU(nn.Module):
    def __init__(self, n_in: int, n: int, n_out: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_in, n)
        self.readout = nn.Linear(n, n_out)

    def forward(self, u):
        h, _ = self.gru(u)
        return self.readout(h), h


def time_updates(model: nn.Module, u: torch.Tensor, y: torch.Tensor, repeats: int) -> float:
    """Mean CPU time of one training update (after 3 warm-up updates).

    CPU (process) time rather than wall time: on one thread it is the same on a quiet machine and
    is not inflated by other processes on a shared one."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for i in range(repeats + 3):
        if i == 3:
            start = time.process_time()
        out, _ = model(u)
        loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if hasattr(model, "constrain_"):
            model.constrain_()
    return (time.process_time() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    set_seed(0)
    n_in, n_out = 7, 3
    u = torch.randn(args.steps, args.batch, n_in)
    y = torch.randint(n_out, (args.steps, args.batch))
    models = {
        "torch.nn.GRU": TorchGRU(n_in, args.n, n_out),
        "light-GRU, hand-written backward": LightGRU(n_in, args.n, n_out),
        "E/I light-GRU, hand-written backward": LightGRU(n_in, args.n, n_out, dale="rectify"),
        "dendritic light-GRU (4 branches)": LightGRU(n_in, args.n, n_out, n_branches=4),
        "light-GRU, autograd time loop": AutogradLoopLightGRU(n_in, args.n, n_out),
    }
    times = {name: time_updates(m, u, y, args.repeats) for name, m in models.items()}
    ref = times["torch.nn.GRU"]
    print(f"N={args.n}, batch={args.batch}, steps={args.steps}, threads={args.threads}, "
          f"{args.repeats} updates each (forward + backward + Adam)")
    for name, t in times.items():
        print(f"{name:38s} {1000 * t:8.2f} ms/update (CPU)   {t / ref:5.2f}x torch.nn.GRU")


if __name__ == "__main__":
    main()
