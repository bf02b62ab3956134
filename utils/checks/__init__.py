"""Self-checks for the labs: the framework in :mod:`utils.checks.core`, then one module per
chapter, named after its notebook:

- :mod:`utils.checks.architecture`             -- Lab 1 (``01_architecture``)
- :mod:`utils.checks.cost_function`            -- Lab 2 (``02_cost_function``)
- :mod:`utils.checks.learning_rule`            -- Lab 3 (``03_learning_rule``)
- :mod:`utils.checks.light_gru`                -- Lab 4 (``04_light_gru``)
- :mod:`utils.checks.context_decision`         -- Lab 5 (``05_context_decision``)
- :mod:`utils.checks.multisensory`             -- Lab 7 (``07_multisensory``)
- :mod:`utils.checks.multisensory_variations`  -- Lab 8 (``08_multisensory_variations``)
- :mod:`utils.checks.ei_sequences`             -- Lab 9 (``09_ei_sequences``)
- :mod:`utils.checks.lowrank_decision`         -- Lab 10 (``10_lowrank_decision``)
- :mod:`utils.checks.lowrank_working_memory`   -- Lab 11 (``11_lowrank_working_memory``)
"""

from .core import *  # noqa: F401,F403  (the framework's public names)
from .core import __all__  # noqa: F401
