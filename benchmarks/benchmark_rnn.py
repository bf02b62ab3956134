"""Benchmark: the course's E/I RateRNN against torch.nn.RNN of the same size.

Trains both (forward + backward + Adam step) on random inputs with N=150 units, batch 64 and
100 time steps, in the same run on one thread (``--threads`` to change), and prints the time per update and the ratio.
A plain Python time loop under autograd measures about 2.6x torch.nn.RNN on the course machine;
the goal for the hand-written backward pass is at most 1.5x.

Run:  python benchmarks/benchmark_rnn.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from utils.models import RateRNN
from utils.seeding import set_seed, set_threads


class AutogradLoopRNN(RateRNN):
    """Same model with the time loop recorded by autograd (for comparison only)."""

    def forward(self, u, x0=None):
        drive = self.alpha * self.input_drive(u)
        w = self.recurrent_weights()
        x = drive.new_zeros(drive.shape[1:])
        rates = []
        for t in range(drive.shape[0]):
            x = (1 - self.alpha) * x + self.alpha * torch.relu(x) @ w.t() + drive[t]
            rates.append(torch.relu(x))
        rates = torch.stack(rates)
        return self.readout(rates[..., : self.n_exc]), rates


class TorchRNN(nn.Module):
    def __init__(self, n_in: int, n: int, n_out: int) -> None:
        super().__init__()
        self.rnn = nn.RNN(n_in, n, nonlinearity="relu")
        self.readout = nn.Linear(n, n_out)

    def forward(self, u):
        h, _ = self.rnn(u)
        return self.readout(h), h


def time_updates(model: nn.Module, u: torch.Tensor, y: torch.Tensor, repeats: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(repeats + 3):
        if i == 3:
            start = time.perf_counter()
        out, _ = model(u)
        loss = nn.functional.mse_loss(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    set_seed(0)
    n_in, n_out = 3, 3
    u = torch.randn(args.steps, args.batch, n_in)
    y = torch.randn(args.steps, args.batch, n_out)
    models = {
        "torch.nn.RNN (relu)": TorchRNN(n_in, args.n, n_out),
        "RateRNN E/I, hand-written backward": RateRNN(n_in, args.n, n_out, dale=True, sparsity=0.2),
        "RateRNN E/I, autograd time loop": AutogradLoopRNN(n_in, args.n, n_out, dale=True, sparsity=0.2),
    }
    times = {name: time_updates(m, u, y, args.repeats) for name, m in models.items()}
    ref = times["torch.nn.RNN (relu)"]
    print(f"N={args.n}, batch={args.batch}, steps={args.steps}, threads={args.threads}, "
          f"{args.repeats} updates each (forward + backward + Adam)")
    for name, t in times.items():
        print(f"{name:38s} {1000 * t:8.2f} ms/update   {t / ref:5.2f}x torch.nn.RNN")


if __name__ == "__main__":
    main()
