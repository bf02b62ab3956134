"""Values between the grader and a student's kernel.

``_encode``/``_decode`` are also sent, as source, to the student's kernel: one implementation for
both sides. They handle None, bool, int, float, str, lists, tuples, str-keyed dicts, numpy arrays
and scalars, torch tensors (with their gradient flag and .grad), torch generators (as their
state) and the course's batches (``utils.tasks.Batch``, as the dict of their fields); anything
else is refused. Nothing is ever unpickled: a kernel can only send data.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

__all__: list[str] = []  # private to utils.grading

MAX_RESULT_BYTES = 20_000_000  # largest value a student's function may send back


def _encode(value, depth=0):
    import numbers as _numbers
    if depth > 20:
        raise TypeError("the value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, _numbers.Integral):
        return int(value)
    if isinstance(value, _numbers.Real):
        x = float(value)
        return x if x == x and x not in (float("inf"), float("-inf")) else {"__t": "float", "v": repr(x)}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, depth + 1) for v in value]
        return items if isinstance(value, list) else {"__t": "tuple", "v": items}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("dictionaries must have string keys")
        return {"__t": "dict", "v": {k: _encode(v, depth + 1) for k, v in value.items()}}
    kind = type(value).__module__.split(".")[0]
    if kind == "utils" and hasattr(value, "__dataclass_fields__") and hasattr(value, "keys"):
        # a course batch (utils.tasks.Batch) travels as the dict of its fields
        return _encode({k: getattr(value, k) for k in value.keys()}, depth)
    if kind == "torch" and hasattr(value, "get_state") and hasattr(value, "manual_seed"):
        # a torch.Generator travels as its state: the student's function draws the same numbers
        return {"__t": "generator", "state": _encode(value.get_state(), depth + 1)}
    if kind == "torch" and hasattr(value, "detach"):
        t = value.detach().cpu()
        if t.numel() > 2_000_000:
            raise TypeError(f"the tensor is too large ({t.numel()} elements)")
        if t.is_complex():
            raise TypeError("complex tensors are not supported")
        out = {"__t": "tensor", "dtype": str(t.dtype).replace("torch.", ""),
               "shape": list(t.shape), "v": [_encode(x) for x in t.reshape(-1).tolist()]}
        if value.requires_grad:  # differentiable values stay so (a check may test for it)
            out["rg"] = True
            if value.is_leaf and value.grad is not None:
                out["grad"] = _encode(value.grad, depth + 1)
        return out
    if kind == "numpy" and hasattr(value, "dtype"):
        import numpy as _np
        a = _np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"numpy arrays of dtype {a.dtype} are not supported")
        if a.size > 2_000_000:
            raise TypeError(f"the array is too large ({a.size} elements)")
        if a.ndim == 0:
            return _encode(a.item(), depth + 1)
        return {"__t": "ndarray", "dtype": str(a.dtype), "shape": list(a.shape),
                "v": [_encode(x) for x in a.reshape(-1).tolist()]}
    raise TypeError(f"values of type {type(value).__name__} cannot be passed between the grader "
                    f"and the notebook")


def _decode(obj, depth=0):
    if depth > 22:
        raise ValueError("the value is nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_decode(v, depth + 1) for v in obj]
    if not isinstance(obj, dict):
        raise ValueError(f"unexpected {type(obj).__name__}")
    tag = obj.get("__t")
    if tag == "float":
        return float(str(obj["v"]))
    if tag == "tuple":
        return tuple(_decode(v, depth + 1) for v in obj["v"])
    if tag == "dict":
        return {str(k): _decode(v, depth + 1) for k, v in obj["v"].items()}
    if tag == "generator":
        import torch as _torch
        state = _decode(obj["state"], depth + 1)
        if not isinstance(state, _torch.Tensor) or state.dtype != _torch.uint8:
            raise ValueError("malformed generator state")
        gen = _torch.Generator()
        try:
            gen.set_state(state)
        except RuntimeError:
            raise ValueError("malformed generator state") from None
        return gen
    if tag in ("tensor", "ndarray"):
        import math as _math

        import numpy as _np
        dtype = str(obj["dtype"])
        allowed = {"float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
                   "uint8", "bool"}
        if dtype not in allowed:
            raise ValueError(f"unsupported dtype {dtype!r}")
        shape = [int(s) for s in obj["shape"]]
        flat = [float(x) if isinstance(x, (int, float)) else float(str(x["v"])) for x in obj["v"]]
        if _math.prod(shape) != len(flat):
            raise ValueError("the shape does not match the number of values")
        if tag == "ndarray":
            return _np.asarray(flat, dtype=dtype if dtype != "bfloat16" else "float32").reshape(shape)
        import torch as _torch
        t = _torch.tensor(flat, dtype=getattr(_torch, dtype)).reshape(shape).clone()
        if obj.get("rg") is True and t.is_floating_point():
            t.requires_grad_(True)
            if "grad" in obj:
                g = _decode(obj["grad"], depth + 1)
                if not isinstance(g, _torch.Tensor) or g.shape != t.shape or g.dtype != t.dtype:
                    raise ValueError("a gradient does not match its tensor")
                t.grad = g.detach()
        return t
    raise ValueError(f"unknown tag {tag!r}")


def _grad_leaves(obj, depth=0):
    """The tensors in ``obj`` (nested lists, tuples, dicts) that are leaves requiring a gradient,
    in a fixed order: the parameters a function may update in place."""
    if depth > 20:
        return []
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _grad_leaves(v, depth + 1)]
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in _grad_leaves(obj[k], depth + 1)]
    if type(obj).__module__.split(".")[0] == "torch" and getattr(obj, "requires_grad", False) \
            and getattr(obj, "is_leaf", False):
        return [obj]
    return []


def _kernel_helper_source(prefix: str) -> str:
    """Code defining ``<prefix>call(name, payload, path)`` in the student's kernel."""
    import inspect
    enc = inspect.getsource(_encode).replace("_encode", prefix + "encode")
    dec = inspect.getsource(_decode).replace("_decode", prefix + "decode")
    leaves = inspect.getsource(_grad_leaves).replace("_grad_leaves", prefix + "grad_leaves")
    call = f'''
def {prefix}call(name, payload, path):
    import json as _json
    try:
        _fn = globals()[name]
    except KeyError:
        _result = {{"status": "missing"}}
    else:
        try:
            _args, _kwargs = {prefix}decode(_json.loads(payload))
            _value = _fn(*_args, **_kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as _err:
            _result = {{"status": "raised", "type": type(_err).__name__, "message": str(_err)[:2000]}}
        else:
            try:
                _result = {{"status": "ok", "value": {prefix}encode(_value),
                           "params": {prefix}encode({prefix}grad_leaves((_args, _kwargs)))}}
            except Exception as _err:
                _result = {{"status": "unreadable", "message": str(_err)[:500]}}
    with open(path, "w") as _f:
        _json.dump(_result, _f)
'''
    return enc + "\n" + dec + "\n" + leaves + "\n" + call


def _copy_back(originals: list, updated: Any) -> None:
    """Give the grader's parameters (tensors requiring a gradient that were passed to the student's
    function) the values and gradients they have in the kernel after the call: a function that
    updates parameters in place, like an optimiser step, is graded on what it did to them."""
    import torch
    if not isinstance(updated, list) or len(updated) != len(originals):
        raise ValueError("the parameters came back in a different number")
    for orig, new in zip(originals, updated):
        if not isinstance(new, torch.Tensor) or new.shape != orig.shape:
            raise ValueError("a parameter came back with a different shape")
        with torch.no_grad():
            orig.copy_(new)
        orig.grad = None if new.grad is None else new.grad.to(orig.dtype)


def _read_result(path: Path) -> dict | None:
    """The JSON a kernel wrote at ``path``: a regular file, not a link, of bounded size."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_RESULT_BYTES:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = f.read(MAX_RESULT_BYTES + 1)
        value = json.loads(data)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
