"""Less Artificial: the small package every notebook of the course imports.

Laid out by concern; a name says what it holds:

- :mod:`utils.models`      -- the networks, all following one interface (:mod:`utils.models.base`):
  rate RNN with Dale's law and masks, dendritic input units, leaky tanh RNN, low-rank RNN
- :mod:`utils.tasks`       -- what the networks learn: neurogym tasks, target-following tasks,
  the low-rank project's tasks and curricula; :class:`utils.tasks.TaskBatch`
- :mod:`utils.constraints` -- brain-like constraints: masks, penalties, clipping, space
- :mod:`utils.learning`    -- learning rules: feedback alignment, RFLO, dendritic error
- :mod:`utils.training`    -- the one training loop (:func:`utils.training.train`) and losses
- :mod:`utils.analysis`    -- measurements: decisions, low-rank statistics, mean field, effective circuits
- :mod:`utils.checks`      -- the labs' self-checks, one module per chapter (named after its notebook)
- :mod:`utils.plotting`, :mod:`utils.reporting` -- figures and result tables
- :mod:`utils.seeding`, :mod:`utils.validation` -- seeds and threads; argument checks
- authoring tools: :mod:`utils.labs` (generate the student labs), :mod:`utils.grading`
  (grade handed-in labs: ``python -m utils.grading``) and :mod:`utils.website` (build the site)

This file imports nothing heavy, so ``import utils`` works before torch is installed.
"""

__course__ = "less-artificial"
__version__ = "0.1.0"
