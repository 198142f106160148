"""Tensor's array behaviour: operators, array methods and the NumPy protocols, attached to ``core.Tensor``.

The core knows a Tensor only as a boxed value of some trace. Everything that makes it behave like a NumPy
array lives here and is set on the class by ``attach`` when ``gpuad.numpy`` is imported (as HIPS autograd's
``numpy_boxes``): arithmetic and reflected operators record through gpuad.numpy's functions (a list operand
reads as NumPy reads it); comparisons and index-valued methods (argmax, nonzero, ...) give plain values with no
derivative; the array methods take ndarray's signatures; ``t[i]`` records a getitem and ``t.at[i]`` gives
out-of-place updates; ``__array_ufunc__`` and ``__array_function__`` route ``numpy.sin(t)`` and
``numpy.sum(t)`` to the gpuad.numpy function of the same name. Conversions to plain values (``float(t)``,
``t.item()``, ``numpy.asarray(t)``, ...) are refused while the value is being differentiated (``convertible``)
and free otherwise; ``format`` formats like NumPy and never refuses. Subclasses of Tensor (one per
interpreter) inherit all of it. Hashing stays by identity although ``__eq__`` compares values.
"""
from __future__ import annotations

import operator

import numpy as _np

from .. import backend
from ..core import aval, concrete, is_float_dtype, lifters, map_values, raw, settle, Tensor
from . import _creation, _diagonals, _elementwise, _nondifferentiable, _products, _rearranging, _reductions, _shapes
from ._elementwise import absolute, add, divide, floor_divide, mod, multiply, negative, power, square, subtract
from ._dispatch import plain_values
from ._indexing import getitem, IndexUpdate
from ._products import matmul

_gnp = None  # the gpuad.numpy module, set by attach


def being_recorded(t) -> bool:
    """Whether a derivative of ``t`` is being taken in the calling thread: ``t`` (or a box inside it) belongs to
    a trace recording here, or ``t`` is a ``gpuad.tensor`` leaf and a ``Tape`` block is open here (which would
    watch it at its first use)."""
    return isinstance(settle(t), Tensor) or (t._trace is None and bool(lifters()))


def convertible(t, what):
    """The backend value under ``t``, for a conversion (``what``) that would drop its derivative: refused with
    the same error as ``numpy.asarray(t)`` while a floating ``t`` is being differentiated (integer and boolean
    values carry no derivative, and a value no trace records converts freely)."""
    value = raw(t)
    if being_recorded(t) and getattr(value, "dtype", None) is not None and is_float_dtype(value.dtype):
        raise TypeError(
            f"{what}: a traced gpuad Tensor cannot be turned into a plain value while it is being differentiated "
            f"(the derivative would be lost silently); use gpuad.numpy functions, or t.data / "
            f"gpuad.stop_gradient(t) to take the value on purpose")
    return value


def _operand(o):
    """A comparison's other operand: Tensors as they are (a vmap's batch stays), lists of them as values."""
    return o if isinstance(o, Tensor) else plain_values(o)


def format_value(value, spec):
    """``format(value, spec)`` as NumPy formats the value; a format spec on an n-d array (which NumPy refuses)
    applies to each element. Formatting never drops a derivative, so it never refuses."""
    value = backend.to_numpy(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return _np.array2string(_np.asarray(value), formatter={"all": lambda v: format(v, spec)})


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

    # ---- Python conversions and iteration: plain values, refused while the value is being differentiated
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
        concrete(self, "a Python float")  # (refused for a value batched by vmap)
        return float(convertible(self, "float(t)"))

    def __int__(self):
        concrete(self, "a Python int")
        return int(convertible(self, "int(t)"))

    def __complex__(self):
        concrete(self, "a Python complex")
        return complex(convertible(self, "complex(t)"))

    def __index__(self):
        return operator.index(concrete(self, "an index"))

    def item(self, *args):
        concrete(self, "a Python number")
        return convertible(self, "t.item()").item(*args)

    def tolist(self):
        concrete(self, "a Python list")
        return convertible(self, "t.tolist()").tolist()

    def __round__(self, ndigits=None):  # like ndarray: numpy.round, recorded (derivative 0)
        return _elementwise.round(self, 0 if ndigits is None else ndigits)

    def __format__(self, spec):
        return format_value(raw(self), spec)

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
        concrete(self, "a plain array (numpy.asarray(t), or a NumPy array indexed by it: use gnp.take)")
        return _np.array(convertible(self, "numpy.asarray(t)"), dtype=dtype, copy=copy)

    # ---- operators
    # (the elementwise functions themselves where the Tensor comes first: one call less per recorded op)
    __add__ = add
    def __radd__(self, o): return add(o, self)
    __sub__ = subtract
    def __rsub__(self, o): return subtract(o, self)
    __mul__ = multiply
    def __rmul__(self, o): return multiply(o, self)
    __truediv__ = divide
    def __rtruediv__(self, o): return divide(o, self)
    def __pow__(self, o):  # x ** 2 is the square row (as JAX's integer_pow): same value, a cheaper derivative
        return square(self) if type(o) is int and o == 2 else power(self, o)
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
    def __lt__(self, o): return map_values(operator.lt, self, _operand(o), align=True)
    def __le__(self, o): return map_values(operator.le, self, _operand(o), align=True)
    def __gt__(self, o): return map_values(operator.gt, self, _operand(o), align=True)
    def __ge__(self, o): return map_values(operator.ge, self, _operand(o), align=True)
    def __eq__(self, o): return map_values(operator.eq, self, _operand(o), align=True)
    def __ne__(self, o): return map_values(operator.ne, self, _operand(o), align=True)

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

    # ---- common methods, all recorded through gpuad.numpy: ndarray's signatures (the function's, less its array)
    def sum(self, *args, **kwargs): return _reductions.sum(self, *args, **kwargs)
    def mean(self, *args, **kwargs): return _reductions.mean(self, *args, **kwargs)
    def prod(self, *args, **kwargs): return _reductions.prod(self, *args, **kwargs)
    def max(self, *args, **kwargs): return _reductions.max(self, *args, **kwargs)
    def min(self, *args, **kwargs): return _reductions.min(self, *args, **kwargs)
    def var(self, *args, **kwargs): return _reductions.var(self, *args, **kwargs)
    def std(self, *args, **kwargs): return _reductions.std(self, *args, **kwargs)
    def cumsum(self, *args, **kwargs): return _reductions.cumsum(self, *args, **kwargs)
    def cumprod(self, *args, **kwargs): return _reductions.cumprod(self, *args, **kwargs)
    def ptp(self, *args, **kwargs): return _reductions.ptp(self, *args, **kwargs)
    def clip(self, min=None, max=None, out=None, **kwargs):
        return _elementwise.clip(self, kwargs.pop("a_min", min), kwargs.pop("a_max", max), out=out, **kwargs)
    def round(self, decimals=0, out=None): return _elementwise.round(self, decimals, out)
    def conj(self): return _elementwise.conjugate(self)
    def conjugate(self): return _elementwise.conjugate(self)
    def squeeze(self, axis=None): return _shapes.squeeze(self, axis)
    def ravel(self, order="C"): return _shapes.ravel(self, order)
    def flatten(self, order="C"): return _shapes.ravel(self, order)
    def swapaxes(self, axis1, axis2): return _shapes.swapaxes(self, axis1, axis2)
    def copy(self, order="C"): return _creation.array(self)
    def diagonal(self, *args, **kwargs): return _diagonals.diagonal(self, *args, **kwargs)
    def trace(self, *args, **kwargs): return _diagonals.trace(self, *args, **kwargs)
    def repeat(self, *args, **kwargs): return _rearranging.repeat(self, *args, **kwargs)
    def take(self, *args, **kwargs): return _rearranging.take(self, *args, **kwargs)
    def dot(self, b, out=None): return _products.dot(self, b, out)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if casting != "unsafe" and not _np.can_cast(raw(self).dtype, dtype, casting):
            raise TypeError(f"Cannot cast array data from {raw(self).dtype!r} to {_np.dtype(dtype)!r} according "
                            f"to the rule {casting!r}")
        return _shapes.astype(self, dtype)

    def reshape(self, *shape, order="C", **kwargs):
        if "shape" in kwargs:
            shape = kwargs.pop("shape")
        elif len(shape) == 1 and not hasattr(shape[0], "__index__"):
            shape = shape[0]
        if kwargs:
            raise TypeError(f"reshape() got unexpected keyword arguments {sorted(kwargs)}")
        return _shapes.reshape(self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], int)):
            axes = axes[0]
        return _shapes.transpose(self, axes or None)

    @property
    def nbytes(self):
        return raw(self).nbytes

    @property
    def itemsize(self):
        return raw(self).itemsize

    def sort(self, axis=-1, kind=None, order=None, *, stable=None):
        """In place, like ndarray.sort: this Tensor becomes the (recorded) sorted array; returns None. An input of a
        transform or Tape (what a gradient is taken with respect to) cannot be sorted in place: its gradient would
        silently become the sorted array's."""
        level = self
        while isinstance(level, Tensor):
            entries = getattr(level._trace, "entries", None)
            node = getattr(level, "_node", None)
            if entries is not None and node is not None and entries[node].prim is None:
                raise TypeError("Tensor.sort would sort an input of a transform (or Tape) in place, and its gradient "
                                "would then be the sorted array's; use gpuad.numpy.sort(t), which returns the sorted "
                                "array")
            level = level._primal
        result = _rearranging.sort(self, axis, kind, order, stable=stable)
        if type(result) is not type(self):
            raise TypeError("Tensor.sort sorts in place, which needs a traced Tensor (one made inside a transform or "
                            "a Tape); use gpuad.numpy.sort(t), which returns the sorted array")
        for cls in type(self).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if slot != "__weakref__":
                    setattr(self, slot, getattr(result, slot))

    def __getattr__(self, name):  # only reached for names Tensor lacks: say what ndarray's one would do here
        if name.startswith("_") or not hasattr(_np.ndarray, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        in_place = name in ("sort", "fill", "resize", "put", "itemset", "setfield", "partition", "byteswap")
        alternative = getattr(_gnp, name, None) is not None and not name.startswith("to")
        raise AttributeError(
            f"a gpuad Tensor has no method {name!r} (numpy.ndarray.{name})"
            + (": it works in place, and a traced value cannot change" if in_place else "")
            + (f"; use gpuad.numpy.{name}(t)" if alternative else "")
            + f"{'; or ' if alternative else '; '}t.data.{name} works on the value, without its derivative")

    # index- and boolean-valued methods: plain arrays, no derivative
    def argmax(self, *args, **kwargs): return _nondifferentiable.argmax(self, *args, **kwargs)
    def argmin(self, *args, **kwargs): return _nondifferentiable.argmin(self, *args, **kwargs)
    def argsort(self, *args, **kwargs): return _nondifferentiable.argsort(self, *args, **kwargs)
    def argpartition(self, *args, **kwargs): return raw(self).argpartition(*args, **kwargs)
    def nonzero(self): return raw(self).nonzero()
    def searchsorted(self, v, *args, **kwargs): return raw(self).searchsorted(plain_values(v), *args, **kwargs)
    def all(self, *args, **kwargs): return _nondifferentiable.all(self, *args, **kwargs)
    def any(self, *args, **kwargs): return _nondifferentiable.any(self, *args, **kwargs)


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
