"""Measurements on trained networks.

- :mod:`utils.analysis.decisions`         -- choices, accuracy, ideal observer (chapters 1-2)
- :mod:`utils.analysis.lowrank_stats`     -- connectivity statistics, resampling, latents (10-11)
- :mod:`utils.analysis.meanfield`         -- mean-field reduction of rank-one networks (10)
- :mod:`utils.analysis.effective_circuit` -- latent (effective) circuits of rank-R networks (11)
"""
