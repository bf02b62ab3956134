"""Every recurrent model of the course follows the one interface of utils.models.base."""

import pytest
import torch

from utils.models import LeakyTanhRNN, LowRankRNN, RateRNN, RecurrentModel, check_model_interface
from utils.models.ei_rate import EIRateRNN
from utils.models.light_gru import LightGRU

MODELS = [
    lambda: RateRNN(3, 12, 2),
    lambda: RateRNN(3, 12, 2, dale=True, sparsity=0.2, n_branches=2),
    lambda: LeakyTanhRNN(3, 12, 2),
    lambda: LowRankRNN(12, 2, 3),
    lambda: LightGRU(3, 12, 2),
    lambda: LightGRU(3, 12, 2, dale="rectify", n_branches=2),
    lambda: EIRateRNN(5, 20, 2),
]


@pytest.mark.parametrize("make", MODELS)
def test_models_follow_the_interface(make):
    model = make()
    assert isinstance(model, RecurrentModel)
    check_model_interface(model)
    u = torch.randn(7, 4, model.n_input)
    outputs, states = model(u)
    assert outputs.shape[:2] == (7, 4)
    assert outputs.shape == (7, 4) or outputs.shape == (7, 4, model.n_output)
    assert states.shape == (7, 4, model.n_units)
    assert model.recurrent_weights().shape == (model.n_units, model.n_units)
    assert model.dt > 0 and (model.tau is None or model.tau >= model.dt)  # GRUs: no tau of their own


def test_interface_check_names_what_is_missing():
    class Half(torch.nn.Module):
        n_input = 1

    with pytest.raises(TypeError, match="recurrent_weights"):
        check_model_interface(Half())
    assert not isinstance(Half(), RecurrentModel)
