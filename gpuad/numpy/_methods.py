"""Tensor's array behaviour: operators, array methods and the NumPy protocols, attached to ``core.Tensor``.

The core knows a Tensor only as a boxed value of some trace. Everything that makes it behave like a NumPy
array lives here and is set on the class by ``attach`` when ``gpuad.numpy`` is imported (as HIPS autograd's
``numpy_boxes``): arithmetic and reflected operators record through gpuad.numpy's functions; comparisons,
index-valued methods (argmax, nonzero, ...) and conversions (``float(t)``, ``t.item()``) give plain values with no
derivative; ``t[i]`` records a getitem and ``t.at[i]`` gives out-of-place updates; ``__array_ufunc__`` and
``__array_function__`` route ``numpy.sin(t)`` and ``numpy.sum(t)`` to the gpuad.numpy function of the same
name, and ``__array__`` refuses the implicit conversion that would drop the derivative. Subclasses of Tensor
(one per interpreter) inherit all of it. Hashing stays by identity although ``__eq__`` compares values.
"""
from __future__ import annotations

import operator

from ..core import aval, concrete, map_values, raw
from . import _creation, _diagonals, _elementwise, _nondifferentiable, _products, _rearranging, _reductions, _shapes
from ._elementwise import absolute, add, divide, floor_divide, mod, multiply, negative, power, subtract
from ._indexing import getitem, IndexUpdate
from ._products import matmul

_gnp = None  # the gpuad.numpy module, set by attach


class _ArrayBehaviour:
    """The methods given to Tensor (defined on this class for readability; ``attach`` copies them over)."""

    __array_priority__ = 1000.0

    # ---- array attributes
    @property
    def T(self):
        return _shapes.transpose(self)

    @property
    def mT(self):
        return _shapes.swapaxes(self, -1, -2)

    @property
    def real(self):
        return _elementwise.real(self)

    @property
    def imag(self):
        return _elementwise.imag(self)

    # ---- Python conversions and iteration: plain values
    def __len__(self):
        shape = aval(self)[0]
        if not shape:
            raise TypeError("len() of unsized object")
        return shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        return bool(concrete(self, "a Python bool"))

    def __float__(self):
        return float(concrete(self, "a Python float"))

    def __int__(self):
        return int(concrete(self, "a Python int"))

    def __index__(self):
        return operator.index(concrete(self, "an index"))

    def item(self, *args):
        return concrete(self, "a Python number").item(*args)

    def tolist(self):
        return concrete(self, "a Python list").tolist()

    # ---- NumPy protocols: numpy.sin(t) and numpy.sum(t) record exactly like gpuad.numpy's
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = getattr(_gnp, ufunc.__name__, None) if method == "__call__" else None
        if fn is None:
            raise NotImplementedError(
                f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} has no gpuad rule, so it "
                f"cannot be applied to a traced Tensor; use gpuad.numpy functions or apply it to t.data (which "
                f"drops the derivative)")
        return fn(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        module = func.__module__.replace("numpy", "").strip(".")
        target = _gnp
        for part in [p for p in module.split(".") if p and not p.startswith("_") and p != "core"]:
            target = getattr(target, part, None)
        fn = getattr(target, func.__name__, None) if target is not None else None
        if fn is None:
            raise NotImplementedError(
                f"{func.__module__}.{func.__name__} has no gpuad rule, so it cannot be applied to a traced Tensor; "
                f"see the README's list of supported functions")
        return fn(*args, **kwargs)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "a traced gpuad Tensor cannot be turned into a plain array implicitly (the derivative would be lost); "
            "use gpuad.numpy functions, or t.data / gpuad.stop_gradient(t) to take the value on purpose")

    # ---- operators
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return subtract(self, o)
    def __rsub__(self, o): return subtract(o, self)
    def __mul__(self, o): return multiply(self, o)
    def __rmul__(self, o): return multiply(o, self)
    def __truediv__(self, o): return divide(self, o)
    def __rtruediv__(self, o): return divide(o, self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return negative(self)
    def __pos__(self): return self
    def __abs__(self): return absolute(self)
    def __mod__(self, o): return mod(self, o)
    def __rmod__(self, o): return mod(o, self)
    def __floordiv__(self, o): return floor_divide(self, o)
    def __rfloordiv__(self, o): return floor_divide(o, self)
    def __divmod__(self, o): return floor_divide(self, o), mod(self, o)
    def __rdivmod__(self, o): return floor_divide(o, self), mod(o, self)

    # comparisons: plain boolean arrays, no derivative (batched under vmap)
    def __lt__(self, o): return map_values(operator.lt, self, o, align=True)
    def __le__(self, o): return map_values(operator.le, self, o, align=True)
    def __gt__(self, o): return map_values(operator.gt, self, o, align=True)
    def __ge__(self, o): return map_values(operator.ge, self, o, align=True)
    def __eq__(self, o): return map_values(operator.eq, self, o, align=True)
    def __ne__(self, o): return map_values(operator.ne, self, o, align=True)

    # ---- indexing
    def __getitem__(self, index):
        return getitem(self, index)

    def __setitem__(self, index, value):
        raise TypeError(
            "a traced gpuad Tensor cannot be assigned into in place (t[i] = v), because the tape has already "
            "recorded its old value. Build the new array instead: gpuad.numpy.where(mask, v, t) for masks, or "
            "t.at[i].set(v) / t.at[i].add(v) for indices")

    @property
    def at(self):
        return IndexUpdate(self)

    # ---- common methods, all recorded through gpuad.numpy
    def sum(self, axis=None, dtype=None, keepdims=False): return _reductions.sum(self, axis, dtype, keepdims=keepdims)
    def mean(self, axis=None, dtype=None, keepdims=False):
        return _reductions.mean(self, axis, dtype, keepdims=keepdims)
    def prod(self, axis=None, dtype=None, keepdims=False):
        return _reductions.prod(self, axis, dtype, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return _reductions.max(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return _reductions.min(self, axis, keepdims=keepdims)
    def var(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return _reductions.var(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def std(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return _reductions.std(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def cumsum(self, axis=None): return _reductions.cumsum(self, axis)
    def cumprod(self, axis=None): return _reductions.cumprod(self, axis)
    def ptp(self, axis=None, keepdims=False): return _reductions.ptp(self, axis, keepdims=keepdims)
    def clip(self, min=None, max=None, **kwargs):
        return _elementwise.clip(self, kwargs.get("a_min", min), kwargs.get("a_max", max))
    def round(self, decimals=0): return _elementwise.round(self, decimals)
    def conj(self): return self
    def astype(self, dtype, copy=True): return _shapes.astype(self, dtype)
    def squeeze(self, axis=None): return _shapes.squeeze(self, axis)
    def ravel(self): return _shapes.ravel(self)
    def flatten(self): return _shapes.ravel(self)
    def swapaxes(self, a, b): return _shapes.swapaxes(self, a, b)
    def copy(self): return _creation.array(self)
    def diagonal(self, offset=0, axis1=0, axis2=1): return _diagonals.diagonal(self, offset, axis1, axis2)
    def trace(self, offset=0, axis1=0, axis2=1): return _diagonals.trace(self, offset, axis1, axis2)
    def repeat(self, repeats, axis=None): return _rearranging.repeat(self, repeats, axis)
    def take(self, indices, axis=None): return _rearranging.take(self, indices, axis)
    def dot(self, other): return _products.dot(self, other)

    def reshape(self, *shape, order="C", **kwargs):
        if "shape" in kwargs:
            shape = kwargs.pop("shape")
        elif len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        if kwargs:
            raise TypeError(f"reshape() got unexpected keyword arguments {sorted(kwargs)}")
        return _shapes.reshape(self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], int)):
            axes = axes[0]
        return _shapes.transpose(self, axes or None)

    # index- and boolean-valued methods: plain arrays, no derivative
    def argmax(self, axis=None, keepdims=False): return _nondifferentiable.argmax(self, axis, keepdims=keepdims)
    def argmin(self, axis=None, keepdims=False): return _nondifferentiable.argmin(self, axis, keepdims=keepdims)
    def argsort(self, axis=-1): return _nondifferentiable.argsort(self, axis)
    def nonzero(self): return raw(self).nonzero()
    def searchsorted(self, v, side="left"): return raw(self).searchsorted(raw(v), side)
    def all(self, axis=None, keepdims=False): return _nondifferentiable.all(self, axis, keepdims=keepdims)
    def any(self, axis=None, keepdims=False): return _nondifferentiable.any(self, axis, keepdims=keepdims)


def attach(cls, namespace):
    """Give ``cls`` (Tensor) every method above. The NumPy protocols look functions up by NumPy's name in
    ``namespace`` (the complete gpuad.numpy module, and its linalg). Hashing stays by identity although
    ``__eq__`` compares values."""
    global _gnp
    _gnp = namespace
    bookkeeping = set(vars(type("Plain", (), {}))) | {"__hash__"}  # what every class body holds
    for name, value in vars(_ArrayBehaviour).items():
        if name not in bookkeeping:
            setattr(cls, name, value)
    cls.__hash__ = object.__hash__
