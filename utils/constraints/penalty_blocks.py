"""Several penalised networks trained at once, as independent blocks of one network (chapter 2).

A 64-unit rate network spends almost all of its training time in Python overhead per time step,
not in arithmetic: on one CPU thread a network of 3 x 64 units trains about as fast as one of 64.
:func:`fit_penalised_blocks` exploits this to compare penalties over several seeds within the
chapter's time budget. It builds one :class:`~utils.models.RateRNN` whose recurrent mask is
block diagonal (no connection between blocks), whose readout is block diagonal too (block ``k``
drives outputs ``k * n_output ... (k+1) * n_output - 1``, the cross-block readout weights are zero
and receive zero gradient), gives every block its own penalty (L1, wiring, communicability-
weighted wiring) and its own seed for the initial weights (each block scaled to spectral radius
``rho`` on its own), and sums the blocks' task losses. Because Adam acts on every parameter
separately and the loss is a sum over blocks, each block learns exactly as a separate network with
that penalty would on the same batches (the batches are shared; the recurrent noise is
independent per unit). Clipping of the global gradient norm would couple the blocks and is not
offered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..validation import check_bool, check_int, check_real

__all__ = ["BlockRun", "fit_penalised_blocks", "block_penalised_loss"]


@dataclass
class BlockRun:
    """One block (one network) of :func:`fit_penalised_blocks`, measured on held-out trials.

    Attributes mirror :class:`utils.constraints.penalties.PenaltyRun`: ``weights`` (the block's effective
    recurrent weights), ``accuracy``, ``mean_rate``, ``peak_rate``, ``seconds`` (the shared
    training time of all blocks), ``settings``; ``unit_peaks`` holds every unit's largest rate
    over the held-out trials (valid steps).
    """

    weights: torch.Tensor
    accuracy: float
    mean_rate: float
    peak_rate: float
    seconds: float
    settings: dict = field(default_factory=dict)
    unit_peaks: torch.Tensor | None = None


def _block_coefficients(blocks: list[dict], n: int) -> dict[str, torch.Tensor]:
    k = len(blocks)
    size = k * n
    out = {name: torch.zeros(size, size) for name in ("l1", "wiring", "comm_wiring")}
    out["rate"] = torch.tensor([float(spec.get("rate", 0.0)) for spec in blocks])
    for b, spec in enumerate(blocks):
        sl = slice(b * n, (b + 1) * n)
        out["l1"][sl, sl] = spec.get("l1", 0.0)
        key = "comm_wiring" if spec.get("communicability", False) else "wiring"
        out[key][sl, sl] = spec.get("wiring", 0.0)
    return out


def block_penalised_loss(model: nn.Module, batch, *, n_blocks: int, n_output: int,
                         coefficients: dict[str, torch.Tensor], distances: torch.Tensor | None,
                         decision_weight: float = 5.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over blocks of the task cross-entropy plus each block's penalties (a ``loss_fn``).

    ``coefficients`` holds per-entry matrices ``l1``, ``wiring`` and ``comm_wiring`` (zero
    outside a block's diagonal square) and ``rate``, one coefficient per block for the mean squared
    rate of the block's units (valid steps); the wiring terms need ``distances`` (the block-diagonal
    distance matrix). The communicability of the whole block-diagonal ``|W|`` is block diagonal,
    each block's being its own, so one matrix exponential serves all blocks (held fixed within
    the update, as in :func:`utils.constraints.penalties.penalised_loss`).
    """
    from ..analysis.decisions import decision_accuracy
    from .spatial import communicability
    from ..training.losses import cross_entropy_loss

    outputs, rates = model(batch.inputs)
    task = 0.0
    accs = []
    for b in range(n_blocks):
        out_b = outputs[..., b * n_output:(b + 1) * n_output]
        task = task + cross_entropy_loss(out_b, batch, decision_weight)
        accs.append(decision_accuracy(out_b.detach(), batch))
    loss = task
    w = model.recurrent_weights()
    a = w.abs()
    if coefficients["l1"].any():
        loss = loss + (coefficients["l1"] * a).sum()
    if coefficients["wiring"].any():
        loss = loss + (coefficients["wiring"] * a * distances).sum()
    if coefficients["rate"].any():
        from .penalties import rate_penalty

        n = w.shape[0] // n_blocks
        for b in range(n_blocks):
            beta = float(coefficients["rate"][b])
            if beta > 0:
                loss = loss + beta * rate_penalty(rates[..., b * n:(b + 1) * n], "mean", batch.valid)
    if coefficients["comm_wiring"].any():
        comm = communicability(w.detach())
        loss = loss + (coefficients["comm_wiring"] * a * distances * comm).sum()
    return loss, {"task_loss": float(task.detach()) / n_blocks, "accuracy": sum(accs) / n_blocks}


def fit_penalised_blocks(pool, test_batch, blocks: list[dict], *, n_units: int = 64,
                         n_updates: int = 500, lr: float = 1e-2, final_lr: float | None = 1e-3,
                         batch_size: int = 64, sigma_rec: float = 0.05, rho: float = 1.0,
                         distances: torch.Tensor | None = None, decision_weight: float = 5.0,
                         batch_seed: int = 0, progress: bool = True,
                         desc: str = "training") -> list[BlockRun]:
    """Train ``len(blocks)`` unconstrained rate networks at once, one per block, and measure each.

    Args:
        pool, test_batch: training pool and held-out trials (as :func:`utils.constraints.penalties.fit_penalised`).
        blocks: one dict per network with keys ``seed`` (initial weights; required), and
            optionally ``l1``, ``rate``, ``wiring``, ``communicability`` (bool: weight the wiring cost by
            the communicability, Achterberg et al. 2023), ``label``.
        n_units: units per block. distances: (n_units, n_units) distances between the units
            of one block (required if any block has ``wiring``).
        n_updates, lr, final_lr, batch_size, sigma_rec, rho, decision_weight: as in
            :func:`utils.constraints.penalties.fit_penalised`; ``batch_seed`` seeds the shared batch order
            and the noise.

    Returns one :class:`BlockRun` per block, in order.
    """
    from ..analysis.decisions import decision_accuracy
    from ..models.rate import RateRNN
    from ..seeding import set_seed
    from ..tasks.batch import TaskBatch
    from ..tasks.neurogym_tasks import batch_sampler
    from ..training.loop import train

    if not isinstance(pool, TaskBatch) or not isinstance(test_batch, TaskBatch):
        raise TypeError("pool and test_batch must be TaskBatch objects")
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError("blocks must be a non-empty list of dicts (one per network)")
    allowed = {"seed", "l1", "rate", "wiring", "communicability", "label"}
    for i, spec in enumerate(blocks):
        if not isinstance(spec, dict) or "seed" not in spec:
            raise ValueError(f"blocks[{i}] must be a dict with at least a 'seed'")
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(f"blocks[{i}] has unknown keys {unknown}; allowed: {sorted(allowed)}")
        check_int(f"blocks[{i}]['seed']", spec["seed"], min_value=0)
        check_real(f"blocks[{i}]['l1']", spec.get("l1", 0.0), low=0.0)
        check_real(f"blocks[{i}]['rate']", spec.get("rate", 0.0), low=0.0)
        check_real(f"blocks[{i}]['wiring']", spec.get("wiring", 0.0), low=0.0)
        check_bool(f"blocks[{i}]['communicability']", spec.get("communicability", False))
    n = check_int("n_units", n_units, min_value=2)
    k = len(blocks)
    n_out = int(pool.targets.max()) + 1
    n_in = pool.inputs.shape[-1]
    if any(spec.get("wiring", 0.0) > 0 for spec in blocks):
        if distances is None or tuple(distances.shape) != (n, n):
            raise ValueError(f"distances must be an ({n}, {n}) matrix when a block has a wiring cost")
    block_mask = torch.block_diag(*[torch.ones(n, n)] * k)
    set_seed(batch_seed)
    model = RateRNN(n_in, k * n, k * n_out, sigma_rec=sigma_rec, rho=rho, mask=block_mask)
    with torch.no_grad():
        scale = float(model.weight_scale)
        for b, spec in enumerate(blocks):
            sl = slice(b * n, (b + 1) * n)
            gen = torch.Generator().manual_seed(int(spec["seed"]))
            raw = torch.randn(n, n, generator=gen)
            radius = torch.linalg.eigvals(raw).abs().max().item()
            model.weight[sl, sl] = raw * (rho / radius) / scale
            ref = nn.Linear(n_in, n)  # per-block input weights and readout from the block's seed
            torch.manual_seed(int(spec["seed"]))
            ref.reset_parameters()
            model.input_layer.weight[sl] = ref.weight
            model.input_layer.bias[sl] = ref.bias
            out = nn.Linear(n, n_out)
            model.readout.weight[b * n_out:(b + 1) * n_out] = 0.0
            model.readout.weight[b * n_out:(b + 1) * n_out, sl] = out.weight
            model.readout.bias[b * n_out:(b + 1) * n_out] = out.bias
        set_seed(batch_seed)  # the noise of training does not depend on the blocks' seeds
        readout_mask = torch.block_diag(*[torch.ones(n_out, n)] * k)
        model.readout.weight.mul_(readout_mask)
    model.readout.weight.register_hook(lambda g: g * readout_mask)
    dist = torch.block_diag(*[distances] * k) if distances is not None else None
    coefficients = _block_coefficients(list(blocks), n)

    def loss_fn(m, batch):
        return block_penalised_loss(m, batch, n_blocks=k, n_output=n_out,
                                    coefficients=coefficients, distances=dist,
                                    decision_weight=decision_weight)

    start = time.perf_counter()
    train(model, batch_sampler(pool, batch_size, seed=batch_seed), n_updates, loss_fn=loss_fn,
          lr=lr, final_lr=final_lr, progress=progress, desc=desc)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        outputs, rates = model(test_batch.inputs)
        w = model.recurrent_weights().detach()
    runs = []
    for b, spec in enumerate(blocks):
        sl = slice(b * n, (b + 1) * n)
        out_b = outputs[..., b * n_out:(b + 1) * n_out]
        r = rates[..., sl][test_batch.valid]
        runs.append(BlockRun(w[sl, sl].clone(), decision_accuracy(out_b, test_batch),
                             float(r.mean()), float(r.max()), seconds, dict(spec),
                             unit_peaks=r.amax(dim=0).clone()))
    return runs
