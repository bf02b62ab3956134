"""The course's networks, one module per model family, all following :mod:`utils.models.base`.

- :mod:`utils.models.base`      -- the model interface (:class:`RecurrentModel`)
- :mod:`utils.models.rate`      -- continuous-time rate RNN, optionally E/I and sparse (chapters 1-2)
- :mod:`utils.models.dendritic` -- two-layer dendritic input units (chapter 1)
- :mod:`utils.models.tanh`      -- the leaky tanh network trained by RFLO (chapter 3)
- :mod:`utils.models.lowrank`   -- low-rank tanh networks (chapters 10-11)
- :mod:`utils.models.light_gru` -- light gated recurrent units: plain, dendritic, E/I (chapter 4)
- :mod:`utils.models.ei_rate`   -- the E/I network of Song, Yang & Wang 2016 (chapter 7)
- :mod:`utils.models.ei_stack`  -- many E/I networks of Song et al. trained as one (chapter 8)
- :mod:`utils.models.ensemble`  -- several rate networks (one per seed) run as one (chapter 9)
"""

from .base import RecurrentModel, check_model_interface
from .dendritic import DendriticInput
from .ei_rate import EIRateRNN
from .ei_stack import StackedEIRateRNN
from .ensemble import RateRNNEnsemble
from .light_gru import LightGRU
from .lowrank import LowRankFunction, LowRankRNN
from .rate import LeakyRNNFunction, RateRNN, constrained_step, leaky_rnn
from .tanh import LeakyTanhRNN

__all__ = ["RecurrentModel", "check_model_interface", "DendriticInput", "EIRateRNN", "LightGRU",
           "StackedEIRateRNN", "RateRNNEnsemble",
           "LowRankFunction",
           "LowRankRNN", "LeakyRNNFunction", "RateRNN", "constrained_step", "leaky_rnn",
           "LeakyTanhRNN"]
