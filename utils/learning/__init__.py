"""Learning rules a brain might implement (chapter 3).

- :mod:`utils.learning.feedback_alignment` -- feedback alignment (Lillicrap et al. 2016)
- :mod:`utils.learning.rflo`               -- RFLO (Murray 2019) and BPTT for comparison
- :mod:`utils.learning.dendritic_error`    -- the dendritic error model (Sacramento et al. 2018)
- :mod:`utils.learning.estimators`         -- rules as gradient estimators: node perturbation,
  Kolen-Pollack, cosine / bias / variance against the true gradient
- :mod:`utils.learning.estimators`         -- every rule as a gradient estimator: node perturbation,
  Kolen-Pollack, cosine, bias and variance
- :mod:`utils.learning.continual`          -- elastic weight consolidation (Kirkpatrick et al. 2017; ch. 9)
"""
