"""What crosses between the grader and a student's kernel (utils.grading.values): plain data,
tensors (with their gradient flag and gradients), arrays and generators round-trip exactly;
anything else is refused; malformed values from a kernel are rejected; parameters updated in the
kernel come back; student-derived text is cleaned before it reaches a feedback file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from utils.grading.results import clean as _clean
from utils.grading.values import _copy_back, _decode, _encode, _grad_leaves


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, "text", [1, [2, 3]], (1, (2.0, "a")), {"a": (1, 2)},
    float("nan"), float("inf"),
])
def test_codec_round_trips_plain_values(value):
    back = _decode(json.loads(json.dumps(_encode(value))))
    if isinstance(value, float) and value != value:
        assert back != back
    else:
        assert back == value and type(back) is type(value)


def test_codec_round_trips_tensors_and_arrays_exactly():
    t = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    for x in [t, t.double(), t > 0, t.long(), torch.zeros(0, 3), t[0, 0]]:
        back = _decode(json.loads(json.dumps(_encode(x))))
        assert torch.is_tensor(back) and back.dtype == x.dtype and torch.equal(back, x)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = _decode(json.loads(json.dumps(_encode(a))))
    assert isinstance(back, np.ndarray) and back.dtype == a.dtype and np.array_equal(back, a)
    assert _decode(_encode(np.float64(2.5))) == 2.5


@pytest.mark.parametrize("value", [object(), {1: 2}, torch.zeros(2, dtype=torch.complex64),
                                   np.array(["a"]), lambda: 1])
def test_codec_refuses_other_values(value):
    with pytest.raises(TypeError):
        _encode(value)


@pytest.mark.parametrize("obj", [{"__t": "tensor", "dtype": "object", "shape": [1], "v": [1]},
                                 {"__t": "tensor", "dtype": "float32", "shape": [3], "v": [1]},
                                 {"__t": "pickle", "v": "..."}, {"__t": "tensor"}])
def test_codec_rejects_malformed_values_from_a_kernel(obj):
    with pytest.raises((ValueError, KeyError)):
        _decode(obj)


def test_feedback_text_is_cleaned():
    text = _clean("at 0x7f3a2b1c9d80 in /tmp/la_grade_abc123/x \x1b[31mred\x1b[0m " + "y" * 1000)
    assert "0x7f" not in text and "la_grade_abc" not in text and "\x1b" not in text
    assert len(text) < 500


def test_codec_carries_gradients_and_the_grad_flag():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    p.grad = torch.tensor([0.5, 0.25])
    back = _decode(json.loads(json.dumps(_encode(p))))
    assert back.requires_grad and back.is_leaf and torch.equal(back.detach(), p.detach())
    assert torch.equal(back.grad, p.grad)
    out = _decode(_encode((p * 2).sum()))
    assert out.requires_grad  # "is this result differentiable" survives the trip
    assert not _decode(_encode(torch.ones(2))).requires_grad
    bad = _encode(p)
    bad["grad"]["shape"], bad["grad"]["v"] = [1], [0.0]
    with pytest.raises(ValueError, match="gradient"):
        _decode(bad)


def test_parameters_updated_in_the_kernel_come_back():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.zeros(1, 2))
    args = ([p, torch.ones(3), {"b": q}], {})
    assert _grad_leaves(args) == [p, q]
    remote = _decode(json.loads(json.dumps(_encode(args))))
    with torch.no_grad():
        for t in _grad_leaves(remote):
            t -= 1.0
    sent = _decode(json.loads(json.dumps(_encode(_grad_leaves(remote)))))
    _copy_back(_grad_leaves(args), sent)
    assert torch.equal(p.detach(), torch.zeros(2)) and torch.equal(q.detach(), -torch.ones(1, 2))
    with pytest.raises(ValueError, match="shape"):
        _copy_back([p], [torch.zeros(3)])
    with pytest.raises(ValueError, match="number"):
        _copy_back([p, q], [torch.zeros(2)])


def test_codec_carries_generators_as_their_state():
    gen = torch.Generator().manual_seed(3)
    torch.randn(5, generator=gen)  # any state, not only a fresh seed
    back = _decode(json.loads(json.dumps(_encode({"g": gen}))))["g"]
    assert isinstance(back, torch.Generator)
    assert torch.equal(torch.randn(4, generator=back), torch.randn(4, generator=gen))
    bad = _encode(torch.Generator().manual_seed(0))
    bad["state"]["shape"], bad["state"]["v"] = [2], [1, 2]
    with pytest.raises(ValueError, match="generator"):
        _decode(bad)
    with pytest.raises(ValueError, match="generator"):
        _decode({"__t": "generator", "state": _encode(torch.zeros(3))})


def test_codec_sends_a_course_batch_as_the_dict_of_its_fields():
    from utils.tasks import working_memory_batch

    batch = working_memory_batch(3, generator=torch.Generator().manual_seed(0))
    got = _decode(json.loads(json.dumps(_encode(batch))))
    assert isinstance(got, dict) and set(got) == {"inputs", "targets", "f1", "f2", "u1", "u2"}
    assert all(torch.equal(got[k], getattr(batch, k)) for k in got)
