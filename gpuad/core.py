"""Boxed values, traces and primitive dispatch: the heart that every interpreter shares.

A ``Trace`` is one differentiation in progress (a reverse-mode ``Tape``, a forward-mode ``ForwardTrace``, ...)
with a nesting level; inner transforms get higher levels. Each interpreter boxes values in its own subclass of
``Tensor``: the box holds its ``primal`` (the value one level down: a backend array, or a box of an outer
trace) plus that interpreter's data. ``bind(prim, args, params)`` sends a primitive to the highest-level trace
among its arguments; with no traced argument it evaluates ``prim.impl`` on backend arrays. Keeping the levels
apart is what keeps nested derivatives from confusing their perturbations.

State is per thread: each thread has its own stack of recording traces, its own ``no_grad`` depth, and its own
list of traces that lift values by identity (open ``Tape`` blocks, see ``Trace.lift``). A box whose trace is not
recording in the calling thread (a finished trace, or another thread's) acts as its primal: a constant.
"""
from __future__ import annotations

import itertools
import operator
import threading

_next_level = itertools.count(1)


class _ThreadState(threading.local):
    def __init__(self):
        self.stack: list[Trace] = []     # traces recording in this thread, outermost first
        self.lifters: list[Trace] = []   # traces that lift values by identity (open Tape blocks), outermost first
        self.no_grad = 0                 # depth of no_grad blocks: tapes record nothing while it is positive


_thread = _ThreadState()


def recording_traces() -> list:
    """The traces recording in the calling thread, outermost first (do not modify the list)."""
    return _thread.stack


def lifters() -> list:
    """The traces lifting values by identity in the calling thread, outermost first (do not modify the list)."""
    return _thread.lifters


def settle(x):
    """``x`` as the calling thread's recording traces see it (boxes of other traces become their primals)."""
    return _settle(x, _thread.stack)


def no_grad_active() -> bool:
    return _thread.no_grad > 0


class Trace:
    """One differentiation in progress. Subclasses implement ``process`` for their interpreter, and ``lift`` if
    they take part in lifting values by identity."""

    def __init__(self):
        self.level = next(_next_level)
        self._stack = None  # the recording stack of the thread this trace records in, while it records

    @property
    def active(self) -> bool:
        """Recording in the calling thread."""
        return self._stack is not None and self._stack is _thread.stack

    def start(self, lifts=False):
        """Start recording in the calling thread; ``lifts``: also see values by identity (``lift``)."""
        if self._stack is not None:
            raise RuntimeError("this trace is already recording; a trace records in one block at a time")
        state = _thread
        self._stack = state.stack
        state.stack.append(self)
        if lifts:
            state.lifters.append(self)

    def stop(self):
        if self._stack is None:
            return
        state = _thread
        if self._stack is not state.stack:
            raise RuntimeError("a trace must be stopped in the thread that started it")
        state.stack.remove(self)
        if self in state.lifters:
            state.lifters.remove(self)
        self._stack = None

    def lift(self, original, value):
        """``value`` (``original`` as lifted by the outer lifters) as this trace sees it; default: unchanged."""
        return value

    def process(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError


def bind(prim, args, params):
    """Apply primitive ``prim`` to ``args``: evaluate it, or hand it to the innermost trace that boxes an arg."""
    state = _thread
    if state.lifters:
        args = _lift(args, state.lifters)
    stack = state.stack
    top = None
    for a in args:
        if isinstance(a, Tensor):
            t = a._trace
            if t is None or t._stack is not stack:
                return bind(prim, [_settle(x, stack) for x in args], params)
            if top is None or t.level > top.level:
                top = t
    if top is None:
        return prim.impl(*args, **params)
    return top.process(prim, args, params)


def _lift(args, lifters):
    lifted = None
    for k, a in enumerate(args):
        if isinstance(a, Tensor):
            v = a
            for t in lifters:
                v = t.lift(a, v)
            if v is not a:
                if lifted is None:
                    lifted = list(args)
                lifted[k] = v
    return args if lifted is None else lifted


def _settle(x, stack):
    """A box of a trace not recording in this thread (or of none) acts as its primal: a constant to the rest."""
    while isinstance(x, Tensor) and (x._trace is None or x._trace._stack is not stack):
        x = x._primal
    return x


def raw(x):
    """The backend array under any number of boxes."""
    while isinstance(x, Tensor):
        x = x._primal
    return x


def lower(x, trace):
    """``x`` seen one level below ``trace``: its primal if ``trace`` boxes it, else ``x`` itself."""
    if isinstance(x, Tensor) and x._trace is trace:
        return x._primal
    return x


def aval(value):
    """(shape, dtype) of a value; Python scalars have dtype None (they adopt the other operand's)."""
    while isinstance(value, Tensor):
        value = value._primal
    try:
        return value.shape, value.dtype
    except AttributeError:
        return (), None


def is_float_dtype(dtype) -> bool:
    return dtype is not None and dtype.kind in "fc"


def refuse_complex(dtype, where):
    """Complex differentiation is not supported yet: say so rather than give a silently wrong derivative."""
    if dtype is not None and dtype.kind == "c":
        raise TypeError(f"complex values are not supported yet by gpuad's derivatives, but {where} is complex "
                        f"({dtype}); differentiate the real and imaginary parts as separate real arrays, or take "
                        f"the value with gpuad.stop_gradient / t.data if it needs no derivative")


def stop_gradient(x):
    """``x`` as a constant: its value, with zero derivative with respect to everything."""
    return raw(x)


class no_grad:
    """Context (or decorator) in which reverse-mode tapes of this thread record nothing; results are plain
    arrays. Other threads keep recording."""

    def __enter__(self):
        _thread.no_grad += 1
        return self

    def __exit__(self, *exc):
        _thread.no_grad -= 1
        return False

    def __call__(self, fun):
        def wrapper(*args, **kwargs):
            with self:
                return fun(*args, **kwargs)
        wrapper.__name__ = getattr(fun, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fun, "__doc__", None)
        return wrapper


class Tensor:
    """A boxed array: the base class of every interpreter's boxes, and a leaf (``trace`` None) made by
    ``gpuad.tensor``. ``.data`` is the raw backend array. Its array behaviour (operators, methods, NumPy's
    protocols) is attached by ``gpuad.numpy``; comparisons give plain boolean arrays (no derivative).
    """

    __slots__ = ("_trace", "_primal", "__weakref__")

    def __init__(self, trace, primal):
        self._trace = trace
        self._primal = primal
    @property
    def data(self):
        return raw(self)

    @property
    def shape(self):
        return raw(self).shape

    @property
    def dtype(self):
        return raw(self).dtype

    @property
    def ndim(self):
        return raw(self).ndim

    @property
    def size(self):
        return raw(self).size

    @property
    def T(self):
        return _gnp().transpose(self)

    @property
    def mT(self):
        return _gnp().swapaxes(self, -1, -2)

    def __len__(self):
        return len(raw(self))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"Tensor({raw(self)!r})"

    def __bool__(self):
        return bool(raw(self))

    def __float__(self):
        return float(raw(self))

    def __int__(self):
        return int(raw(self))

    def __index__(self):
        return operator.index(raw(self))

    def item(self, *args):
        return raw(self).item(*args)

    def tolist(self):
        return raw(self).tolist()

    __hash__ = object.__hash__

    # ---- NumPy protocols: numpy.sin(t) and numpy.sum(t) record exactly like gpuad.numpy's
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = getattr(_gnp(), ufunc.__name__, None) if method == "__call__" else None
        if fn is None:
            raise NotImplementedError(
                f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} has no gpuad rule, so it "
                f"cannot be applied to a traced Tensor; use gpuad.numpy functions or apply it to t.data (which "
                f"drops the derivative)")
        return fn(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import numpy as gnp
        module = func.__module__.replace("numpy", "").strip(".")
        target = gnp
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
    def __add__(self, o): return _gnp().add(self, o)
    def __radd__(self, o): return _gnp().add(o, self)
    def __sub__(self, o): return _gnp().subtract(self, o)
    def __rsub__(self, o): return _gnp().subtract(o, self)
    def __mul__(self, o): return _gnp().multiply(self, o)
    def __rmul__(self, o): return _gnp().multiply(o, self)
    def __truediv__(self, o): return _gnp().divide(self, o)
    def __rtruediv__(self, o): return _gnp().divide(o, self)
    def __pow__(self, o): return _gnp().power(self, o)
    def __rpow__(self, o): return _gnp().power(o, self)
    def __matmul__(self, o): return _gnp().matmul(self, o)
    def __rmatmul__(self, o): return _gnp().matmul(o, self)
    def __neg__(self): return _gnp().negative(self)
    def __pos__(self): return self
    def __abs__(self): return _gnp().abs(self)
    def __mod__(self, o): return _gnp().mod(self, o)
    def __rmod__(self, o): return _gnp().mod(o, self)
    def __floordiv__(self, o): return _gnp().floor_divide(self, o)
    def __rfloordiv__(self, o): return _gnp().floor_divide(o, self)

    def __lt__(self, o): return raw(self) < raw(o)
    def __le__(self, o): return raw(self) <= raw(o)
    def __gt__(self, o): return raw(self) > raw(o)
    def __ge__(self, o): return raw(self) >= raw(o)
    def __eq__(self, o): return raw(self) == raw(o)
    def __ne__(self, o): return raw(self) != raw(o)

    def __getitem__(self, index):
        return _gnp()._getitem(self, index)

    def __setitem__(self, index, value):
        raise TypeError(
            "a traced gpuad Tensor cannot be assigned into in place (t[i] = v), because the tape has already "
            "recorded its old value. Build the new array instead: gpuad.numpy.where(mask, v, t) for masks, or "
            "t.at[i].set(v) / t.at[i].add(v) for indices")

    @property
    def at(self):
        return _gnp()._IndexUpdate(self)

    # ---- common methods, all recorded through gpuad.numpy
    def sum(self, axis=None, dtype=None, keepdims=False): return _gnp().sum(self, axis, dtype, keepdims=keepdims)
    def mean(self, axis=None, dtype=None, keepdims=False): return _gnp().mean(self, axis, dtype, keepdims=keepdims)
    def prod(self, axis=None, dtype=None, keepdims=False): return _gnp().prod(self, axis, dtype, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return _gnp().max(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return _gnp().min(self, axis, keepdims=keepdims)
    def var(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return _gnp().var(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def std(self, axis=None, dtype=None, ddof=0, keepdims=False):
        return _gnp().std(self, axis, dtype, ddof=ddof, keepdims=keepdims)
    def cumsum(self, axis=None): return _gnp().cumsum(self, axis)
    def clip(self, min=None, max=None, **kwargs): return _gnp().clip(self, kwargs.get("a_min", min),
                                                                   kwargs.get("a_max", max))
    def astype(self, dtype, copy=True): return _gnp().astype(self, dtype)
    def squeeze(self, axis=None): return _gnp().squeeze(self, axis)
    def ravel(self): return _gnp().ravel(self)
    def flatten(self): return _gnp().ravel(self)
    def copy(self): return _gnp().array(self)
    def conj(self): return self
    def swapaxes(self, a, b): return _gnp().swapaxes(self, a, b)
    def diagonal(self, offset=0, axis1=0, axis2=1): return _gnp().diagonal(self, offset, axis1, axis2)
    def trace(self, offset=0, axis1=0, axis2=1): return _gnp().trace(self, offset, axis1, axis2)
    def cumprod(self, axis=None): return _gnp().cumprod(self, axis)
    def round(self, decimals=0): return _gnp().round(self, decimals)
    def ptp(self, axis=None, keepdims=False): return _gnp().ptp(self, axis, keepdims=keepdims)
    def repeat(self, repeats, axis=None): return _gnp().repeat(self, repeats, axis)
    def take(self, indices, axis=None): return _gnp().take(self, indices, axis)
    def dot(self, other): return _gnp().dot(self, other)

    @property
    def real(self): return _gnp().real(self)

    @property
    def imag(self): return _gnp().imag(self)

    # index- and boolean-valued methods: plain arrays, no derivative
    def argmax(self, axis=None, keepdims=False): return raw(self).argmax(axis, keepdims=keepdims)
    def argmin(self, axis=None, keepdims=False): return raw(self).argmin(axis, keepdims=keepdims)
    def argsort(self, axis=-1): return raw(self).argsort(axis)
    def nonzero(self): return raw(self).nonzero()
    def searchsorted(self, v, side="left"): return raw(self).searchsorted(raw(v), side)
    def all(self, axis=None, keepdims=False): return raw(self).all(axis, keepdims=keepdims)
    def any(self, axis=None, keepdims=False): return raw(self).any(axis, keepdims=keepdims)

    def __divmod__(self, o): return _gnp().floor_divide(self, o), _gnp().mod(self, o)
    def __rdivmod__(self, o): return _gnp().floor_divide(o, self), _gnp().mod(o, self)

    def reshape(self, *shape, order="C", **kwargs):
        if "shape" in kwargs:
            shape = kwargs.pop("shape")
        elif len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        if kwargs:
            raise TypeError(f"reshape() got unexpected keyword arguments {sorted(kwargs)}")
        return _gnp().reshape(self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], int)):
            axes = axes[0]
        return _gnp().transpose(self, axes or None)


_gnp_module = None


def traced_numpy():
    """The gpuad.numpy module, imported on first use: the rule tables are imported before it exists, and their
    rules call its functions so that they run on traced values too."""
    global _gnp_module
    if _gnp_module is None:
        from . import numpy as gnp
        _gnp_module = gnp
    return _gnp_module


_gnp = traced_numpy
