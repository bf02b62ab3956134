"""Measurements on trained networks.

- :mod:`utils.analysis.decisions`         -- choices, accuracy, ideal observer (chapters 1-2)
- :mod:`utils.analysis.lowrank_stats`     -- connectivity statistics, resampling, latents (10-11)
- :mod:`utils.analysis.meanfield`         -- mean-field reduction of rank-one networks (10)
- :mod:`utils.analysis.effective_circuit` -- latent (effective) circuits of rank-R networks (11)
- :mod:`utils.analysis.answers`           -- accuracy of the answers that matter (4)
- :mod:`utils.analysis.selectivity`       -- single-unit selectivity: d', ROC preference (4, 7)
- :mod:`utils.analysis.pca`               -- principal components of network states (4)
- :mod:`utils.analysis.psychometric`      -- psychometric fits, optimal cue combination (7)
- :mod:`utils.analysis.peak_shifts`       -- peak times of sequences and their shifts (9)
- :mod:`utils.analysis.context_decision`  -- context-dependent decisions by trial, ideal observer (5)
- :mod:`utils.analysis.spread`            -- a difference between variants against the seed spread (8)
"""
