import pytest
import torch

from utils.models import LeakyTanhRNN
from utils.tasks.cue_recall import CueRecallTask, readout_only_mse, response_mse


def test_batch_layout():
    task = CueRecallTask(4, delay=6, cue_steps=2, response_steps=3, seed=0)
    b = task.batch(10)
    assert b.inputs.shape == (11, 10, 2) and b.targets.shape == (11, 10, 1) and b.h0.shape == (10, 4)
    sign = b.inputs[0, :, 0]
    assert torch.all(sign.abs() == 1)
    assert torch.all(b.inputs[2:8] == 0)                  # silent delay
    assert torch.all(b.targets[task.response, :, 0] == sign)
    assert torch.all(b.targets[: task.response.start] == 0)
    assert torch.all(b.inputs[task.response, :, 1] == 1)
    with pytest.raises(ValueError):
        CueRecallTask(4, delay=-1)


def test_untrained_memory_fades_with_delay():
    net = LeakyTanhRNN(2, 20, 1, tau=5, gain=0.5, readout_scale=0.0, seed=0)
    short = readout_only_mse(net, CueRecallTask(20, 2, seed=1), 400, 400)
    long = readout_only_mse(net, CueRecallTask(20, 40, seed=1), 400, 400)
    assert short < long
    assert response_mse(net, CueRecallTask(20, 2, seed=1), 50) == pytest.approx(1.0)  # zero readout
