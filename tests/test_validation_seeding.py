import pytest
import torch

from utils.seeding import get_device, set_seed, set_threads
from utils.validation import check_choice, check_int, check_real, check_tensor_shape


def test_messages_name_argument_and_range():
    with pytest.raises(ValueError, match=r"x must lie in \(0, 1\), got 1"):
        check_real("x", 1, low=0, high=1, low_open=True, high_open=True)
    with pytest.raises(TypeError, match="n must be an integer"):
        check_int("n", 2.5)
    with pytest.raises(TypeError, match="n must be an integer"):
        check_int("n", True)
    with pytest.raises(ValueError, match="n must be >= 1"):
        check_int("n", 0, min_value=1)
    with pytest.raises(ValueError, match="finite"):
        check_real("x", float("nan"))
    with pytest.raises(ValueError, match="mode must be one of"):
        check_choice("mode", "b", ["a"])
    with pytest.raises(ValueError, match=r"w must have shape \(2, any\)"):
        check_tensor_shape("w", torch.zeros(3, 3), (2, None))


def test_seed_reproducible_and_threads_and_device():
    set_seed(5)
    a = torch.rand(3)
    set_seed(5)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="seed"):
        set_seed(-1)
    assert set_threads(2) == 2 and torch.get_num_threads() == 2
    assert get_device().type == "cpu"
    with pytest.raises(ValueError, match="prefer"):
        get_device("tpu")
