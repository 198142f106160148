"""gpuad.numpy functions whose results carry no derivative: comparisons, predicates, and index- or
integer-valued functions (argmax, nonzero, searchsorted, ...).

They run the backend's own function on the values under any gpuad boxes and return plain arrays, so NumPy code
that mixes them with differentiable math works unchanged (``numpy.greater(t, 0)`` and ``numpy.argmax(t)`` on a
traced Tensor reach them through the NumPy protocols).
"""
from __future__ import annotations

import functools

from .. import backend
from ..core import Tensor, raw

NAMES = (
    # comparisons and logic
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and", "logical_or",
    "logical_not", "logical_xor", "any", "all", "allclose", "isclose", "array_equal", "array_equiv",
    # predicates
    "isnan", "isinf", "isfinite", "isneginf", "isposinf", "signbit", "iscomplexobj", "isrealobj",
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


def _constant_function(name):
    @functools.wraps(getattr(__import__("numpy"), name))
    def fn(*args, **kwargs):
        args = [_values(a) for a in args]
        kwargs = {k: _values(v) for k, v in kwargs.items()}
        module = backend.array_module(*[a for a in args if hasattr(a, "dtype")])
        return getattr(module, name)(*args, **kwargs)
    fn.__doc__ = f"numpy.{name} on the values (no derivative flows through it)."
    return fn


for _name in NAMES:
    globals()[_name] = _constant_function(_name)
