"""Less Artificial: the small package every notebook of the course imports.

Modules, one per concern:

- :mod:`utils.seeding`   -- seeds, threads and device selection
- :mod:`utils.validation` -- argument checks shared by every public function
- :mod:`utils.masks`     -- Dale's-law sign matrices, sparsity and dendritic block masks
- :mod:`utils.models`    -- continuous-time rate RNN (optionally E/I), dendritic-unit RNN
- :mod:`utils.tasks`     -- reproducible batches from neurogym tasks
- :mod:`utils.training`  -- training loop with progress bar and history
- :mod:`utils.analysis`  -- accuracy, per-condition accuracy and other measurements
- :mod:`utils.plotting`  -- consistent figures
- :mod:`utils.reporting` -- result tables ("what we reproduced") rendered as Markdown
- :mod:`utils.penalties` -- cost-function penalties (L1 weights, L2 rates, wiring cost), clipping
- :mod:`utils.spatial`   -- units on a grid: distances, communicability, modularity
- :mod:`utils.learning_rules` -- feedback alignment, RFLO, BPTT comparison
- :mod:`utils.dendritic_error` -- a steady-state toy of the dendritic error model (Sacramento 2018)
- :mod:`utils.target_tasks` -- target-following tasks for the learning-rule chapter
- :mod:`utils.lowrank`   -- low-rank RNNs, their tasks, Gaussian fit and resampling
- :mod:`utils.meanfield` -- mean-field reduction of rank-one networks, fixed points
- :mod:`utils.effective_circuit` -- latent (effective) circuits of rank-R networks
- :mod:`utils.checks`    -- self-checks used in the labs (one module per chapter)
- :mod:`utils.labs`      -- generate student labs from the solution notebooks
- :mod:`utils.grading`   -- grade a folder of handed-in labs against the solutions

This file imports nothing heavy, so ``import utils`` works before torch is installed.
"""

__course__ = "less-artificial"
__version__ = "0.1.0"
