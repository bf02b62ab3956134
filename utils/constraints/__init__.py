"""Brain-like constraints on a network's structure and on its cost (chapters 1-2).

- :mod:`utils.constraints.masks`     -- Dale's-law signs, sparsity, cell-type and dendritic block masks (ch. 1)
- :mod:`utils.constraints.penalties` -- L1 on weights, L2 on rates, wiring cost; penalty sweeps (ch. 2)
- :mod:`utils.constraints.clipping`  -- bounds on each learning step's size (ch. 2)
- :mod:`utils.constraints.spatial`   -- units on a grid: distances, communicability, modularity (ch. 2)
- :mod:`utils.constraints.penalty_blocks` -- several penalised networks trained at once as blocks (ch. 2)
- :mod:`utils.constraints.penalty_blocks` -- several penalised networks trained at once (ch. 2)
"""
