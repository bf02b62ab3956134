"""Time to reach the rank-2 working-memory bar (chapter 11) on this machine.

Trains N = 128, rank 2 with the chapter's recipe (Adam lr 1e-2, batch 32, loss on the last 5
steps, delay curriculum 0 -> 49 steps by one step every 10 updates, rounds of 100 updates) until
the full-delay validation loss is below 4e-3, then prints the number of updates, the wall-clock
time and the held-out loss (bar: 5e-3).

    python benchmarks/benchmark_lowrank_wm.py [--seeds 0 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from utils.tasks import DelayCurriculum
from utils.models import LowRankRNN
from utils.analysis.lowrank_stats import evaluate_lowrank
from utils.training import train_lowrank
from utils.tasks import working_memory_batch
from utils.seeding import set_threads


def run(seed: int, max_updates: int = 3000) -> dict[str, float]:
    validation = working_memory_batch(512, generator=torch.Generator().manual_seed(2))
    test = working_memory_batch(2048, generator=torch.Generator().manual_seed(1234))
    model = LowRankRNN(128, rank=2, seed=seed)
    curriculum = DelayCurriculum(32, start_delay=0, updates_per_step=10,
                                 generator=torch.Generator().manual_seed(seed + 1))
    history = None
    start = time.perf_counter()
    while True:
        history = train_lowrank(model, curriculum, 100, lr=1e-2, loss_steps=5, history=history,
                                progress=False)
        val_loss = evaluate_lowrank(model, validation, loss_steps=5)["loss"]
        if (curriculum.delay == curriculum.full_delay and val_loss < 4e-3) or len(history) >= max_updates:
            break
    seconds = time.perf_counter() - start
    result = evaluate_lowrank(model, test, loss_steps=5)
    return {"updates": len(history), "seconds": seconds, "loss": result["loss"],
            "accuracy": result["accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-updates", type=int, default=3000)
    args = parser.parse_args()
    set_threads(2)
    for seed in args.seeds:
        r = run(seed, args.max_updates)
        status = "bar met" if r["loss"] < 5e-3 else "bar NOT met"
        print(f"seed {seed}: {r['updates']} updates in {r['seconds']:.1f} s, held-out loss "
              f"{r['loss']:.2e}, sign accuracy {r['accuracy']:.3f} ({status})")


if __name__ == "__main__":
    main()
