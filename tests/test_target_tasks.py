import pytest
import torch

from utils.tasks import PeriodicTargetTask, TeacherRegressionTask


def test_periodic_task_shapes_and_determinism():
    task = PeriodicTargetTask(10, tau=4, period_tau=5, seed=1)
    b = task.batch(3)
    assert b.inputs.shape == (20, 3, 1) and b.targets.shape == (20, 3, 1) and b.h0.shape == (3, 10)
    assert torch.all(b.inputs[:5] == 1) and torch.all(b.inputs[5:] == 0)
    assert abs(task.signal).max().item() == pytest.approx(0.8)
    again = PeriodicTargetTask(10, tau=4, period_tau=5, seed=1).batch(3)
    assert torch.equal(b.h0, again.h0) and torch.equal(b.targets, again.targets)
    clock = PeriodicTargetTask(10, tau=4, period_tau=5, drive="clock").batch(2)
    assert clock.inputs.shape == (20, 2, 2)


def test_periodic_task_bad_arguments():
    with pytest.raises(ValueError, match="tau"):
        PeriodicTargetTask(10, tau=0.5)
    with pytest.raises(ValueError, match="pulse_steps"):
        PeriodicTargetTask(10, tau=2, period_tau=2, pulse_steps=10)
    with pytest.raises(TypeError, match="n_units"):
        PeriodicTargetTask("10")
    with pytest.raises(ValueError, match="batch_size"):
        PeriodicTargetTask(10).batch(0)


def test_teacher_task():
    task = TeacherRegressionTask(6, 4, 2, seed=0)
    x, y = task.batch(5)
    assert x.shape == (5, 6) and y.shape == (5, 2)
    assert torch.allclose(task.teacher(x), y)
    xt, yt = task.test_set()
    assert xt.shape == (1000, 6)
    with pytest.raises(ValueError, match="gain"):
        TeacherRegressionTask(gain=-1.0)


def test_teacher_task_noise_floor():
    task = TeacherRegressionTask(6, 4, 2, noise_std=0.5, seed=0)
    x, y = task.test_set()
    resid = (y - task.teacher(x)).pow(2).mean().item()
    assert resid == pytest.approx(0.25, rel=0.15)
