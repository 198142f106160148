"""gpuad.numpy functions whose results carry no derivative: comparisons, predicates, and index- or
integer-valued functions (argmax, nonzero, searchsorted, ...).

They run the backend's own function on the values under any gpuad boxes and return plain arrays, so NumPy code
that mixes them with differentiable math works unchanged (``numpy.greater(t, 0)`` and ``numpy.argmax(t)`` on a
traced Tensor reach them through the NumPy protocols).
"""
from __future__ import annotations

import builtins
import functools

from .. import backend
from ..core import Tensor, aval, is_batched, map_values, raw

NAMES = (
    # comparisons and logic
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and", "logical_or",
    "logical_not", "logical_xor", "any", "all", "allclose", "isclose", "array_equal", "array_equiv",
    # predicates
    "isnan", "isinf", "isfinite", "isneginf", "isposinf", "signbit", "iscomplex", "isreal", "iscomplexobj",
    "isrealobj",
    # index- and integer-valued results
    "argmax", "argmin", "argsort", "argpartition", "nonzero", "flatnonzero", "argwhere", "count_nonzero",
    "searchsorted", "digitize", "bincount", "unique", "histogram", "isin",
    # dtype and shape queries
    "result_type", "can_cast", "broadcast_shapes",
)

__all__ = list(NAMES)


def _values(value):
    if isinstance(value, Tensor):
        return raw(value)
    if type(value) in (list, tuple):
        return type(value)(_values(v) for v in value)
    return value


# Under vmap: these run elementwise on the whole batch; the axis-taking ones get their axes counted from the end.
_ELEMENTWISE = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and", "logical_or",
                "logical_not", "logical_xor", "isclose", "isnan", "isinf", "isfinite", "isneginf", "isposinf",
                "signbit", "iscomplex", "isreal"}
_AXIS = {"argmax", "argmin", "argsort", "any", "all", "count_nonzero"}


def _batched_call(name, args, kwargs):
    """``name`` applied to batched values (vmap): the batch axes stay in front of the result."""
    if name in _ELEMENTWISE:  # (the arguments keep their places: greater(1.0, a) is not greater(a, 1.0))
        at = [k for k, a in enumerate(args) if isinstance(a, Tensor) or hasattr(a, "shape")]

        def run(*values):
            placed = list(args)
            for k, v in zip(at, values):
                placed[k] = v
            return getattr(backend.array_module(*values), name)(*placed, **kwargs)
        return map_values(run, *[args[k] for k in at], align=True)
    if name not in _AXIS or len(args) > 2 or not isinstance(args[0], Tensor):
        raise NotImplementedError(f"vmap: gpuad.numpy.{name} is not supported on batched values (its result's "
                                  f"shape can differ between examples); apply it outside the vmapped function")
    kwargs = dict(kwargs)
    axis = kwargs.pop("axis", args[1] if len(args) > 1 else (-1 if name == "argsort" else None))
    ndim = len(aval(args[0])[0])

    def run(v):
        fn = backend.argsort if name == "argsort" else getattr(backend.array_module(v), name)  # (CuPy: bfloat16)
        if axis is None and name in ("argmax", "argmin", "argsort"):
            return fn(v.reshape(v.shape[:v.ndim - ndim] + (-1,)), axis=-1, **kwargs)
        axes = tuple(range(-ndim, 0)) if axis is None else tuple(
            a % ndim - ndim for a in ((axis,) if isinstance(axis, int) else axis))
        return fn(v, axis=axes[0] if isinstance(axis, int) else axes, **kwargs)
    return map_values(run, args[0])


def _constant_function(name):
    @functools.wraps(getattr(__import__("numpy"), name))
    def fn(*args, **kwargs):
        if builtins.any(is_batched(a) for a in (*args, *kwargs.values())):
            return _batched_call(name, args, kwargs)
        args = [_values(a) for a in args]
        kwargs = {k: _values(v) for k, v in kwargs.items()}
        module = backend.array_module(*[a for a in args if hasattr(a, "dtype")])
        if not backend.matches_numpy(module, name, args, kwargs):  # (CuPy's argsort of bfloat16, ...)
            return getattr(backend, name)(*args, **kwargs)
        return getattr(module, name)(*args, **kwargs)
    fn.__doc__ = f"numpy.{name} on the values (no derivative flows through it)."
    return fn


for _name in NAMES:
    globals()[_name] = _constant_function(_name)
