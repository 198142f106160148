"""Traced values, traces and primitive dispatch: the heart that both AD modes share.

A ``Trace`` is one active differentiation (a reverse-mode ``Tape`` or a forward-mode ``ForwardTrace``) with a
nesting level; inner transforms get higher levels. A ``Tensor`` is a value boxed by one trace: it holds its
``primal`` (the value one level down: a backend array, or a Tensor of an outer trace) plus that trace's data
(a tape node index, or a tangent). ``bind(prim, args, params)`` sends a primitive to the highest-level trace
among its arguments; with no traced argument it just evaluates ``prim.impl`` on backend arrays. Keeping the
levels apart is what keeps nested derivatives from confusing their perturbations.
"""
from __future__ import annotations

import itertools

from . import backend

_next_level = itertools.count(1)


class _State:
    no_grad_depth = 0
    active_traces = 0  # how many traces are recording now (the backward pass must be traced when any are)


state = _State()


class Trace:
    """One differentiation in progress. Subclasses implement ``process`` for their mode."""

    def __init__(self):
        self.level = next(_next_level)
        self.active = False

    def start(self):
        self.active = True
        state.active_traces += 1

    def stop(self):
        if self.active:
            self.active = False
            state.active_traces -= 1

    def process(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError


def bind(prim, args, params):
    """Apply primitive ``prim`` to ``args``: evaluate it, or hand it to the innermost trace that boxes an arg."""
    top = None
    for a in args:
        if type(a) is Tensor:
            t = a._trace
            if t is None or not t.active:
                return bind(prim, [_settle(x) for x in args], params)
            if top is None or t.level > top.level:
                top = t
    if top is None:
        return prim.impl(*args, **params)
    return top.process(prim, args, params)


def _settle(x):
    """A Tensor of a finished (or no) trace acts as its primal: a constant to every live trace."""
    while type(x) is Tensor and (x._trace is None or not x._trace.active):
        x = x._primal
    return x


def raw(x):
    """The backend array under any number of boxes."""
    while type(x) is Tensor:
        x = x._primal
    return x


def lower(x, trace):
    """``x`` seen one level below ``trace``: its primal if ``trace`` boxes it, else ``x`` itself."""
    if type(x) is Tensor and x._trace is trace:
        return x._primal
    return x


def aval(value):
    """(shape, dtype) of a value; Python scalars have dtype None (they adopt the other operand's)."""
    while type(value) is Tensor:
        value = value._primal
    try:
        return value.shape, value.dtype
    except AttributeError:
        return (), None


def is_float_dtype(dtype) -> bool:
    return dtype is not None and dtype.kind in "fc"


def is_traced(x) -> bool:
    return type(x) is Tensor and x._trace is not None and x._trace.active


def stop_gradient(x):
    """``x`` as a constant: its value, with zero derivative with respect to everything."""
    return raw(x)


class no_grad:
    """Context (or decorator) in which reverse-mode tapes record nothing; results are plain arrays."""

    def __enter__(self):
        state.no_grad_depth += 1
        return self

    def __exit__(self, *exc):
        state.no_grad_depth -= 1
        return False

    def __call__(self, fun):
        def wrapper(*args, **kwargs):
            with self:
                return fun(*args, **kwargs)
        wrapper.__name__ = getattr(fun, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fun, "__doc__", None)
        return wrapper


class Tensor:
    """A traced array: a value boxed by one trace. ``.data`` is the raw backend array. Its array behaviour
    (arithmetic, indexing, NumPy functions through ``__array_ufunc__``/``__array_function__``, common methods)
    is attached by ``gpuad.numpy`` (see ``gpuad/numpy/_methods.py``); comparisons give plain boolean arrays.
    """

    __slots__ = ("_trace", "_primal", "_node", "_tangent", "__weakref__")

    def __init__(self, trace, primal, node=None, tangent=None):
        self._trace = trace
        self._primal = primal
        self._node = node
        self._tangent = tangent

    # ---- array attributes
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

    def __repr__(self):
        return f"Tensor({raw(self)!r})"

    __hash__ = object.__hash__


_gnp_module = None


def traced_numpy():
    """The gpuad.numpy module, imported on first use: the rule tables are imported before it exists, and their
    rules call its functions so that they run on traced values too."""
    global _gnp_module
    if _gnp_module is None:
        from . import numpy as gnp
        _gnp_module = gnp
    return _gnp_module



def tensor(value, dtype=None):
    """A Tensor holding ``value`` (converted to a backend array). Made inside Tape contexts, it is watched by
    every active Tape; made outside, it is a constant until a Tape watches it.
    """
    from .tape import watch_in_active_tapes
    value = raw(value)
    module = backend.array_module(value)
    if not _is_array(value, module) or dtype is not None:
        value = module.asarray(value, dtype=dtype)
    return watch_in_active_tapes(Tensor(None, value))


def _is_array(value, module):
    return isinstance(value, (module.ndarray,))
