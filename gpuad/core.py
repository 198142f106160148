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
import math
import threading

_next_level = itertools.count(1)


class TraceStack(list):
    """One thread's traces recording now, outermost first, with that thread's other trace state: the traces
    that lift values by identity (open Tape blocks, outermost first) and the ``no_grad`` depth. A trace keeps a
    reference to the stack it records on, so it checks its thread without a thread-local lookup."""

    __slots__ = ("lifters", "no_grad")

    def __init__(self):
        super().__init__()
        self.lifters: list = []
        self.no_grad = 0


class _ThreadState(threading.local):
    def __init__(self):
        self.stack = TraceStack()


_thread = _ThreadState()


def recording_traces() -> TraceStack:
    """The calling thread's trace stack (do not modify it)."""
    return _thread.stack


def lifters() -> list:
    """The traces lifting values by identity in the calling thread, outermost first (do not modify the list)."""
    return _thread.stack.lifters


def settle(x):
    """``x`` as the calling thread's recording traces see it (boxes of other traces become their primals)."""
    return _settle(x, _thread.stack)


def no_grad_active() -> bool:
    return _thread.stack.no_grad > 0


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
        stack = self._stack = _thread.stack
        stack.append(self)
        if lifts:
            stack.lifters.append(self)

    def stop(self):
        stack = self._stack
        if stack is None:
            return
        if stack is not _thread.stack:
            raise RuntimeError("a trace must be stopped in the thread that started it")
        stack.remove(self)
        if self in stack.lifters:
            stack.lifters.remove(self)
        self._stack = None

    def lift(self, original, value):
        """``value`` (``original`` as lifted by the outer lifters) as this trace sees it; default: unchanged."""
        return value

    def process(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError


def bind(prim, args, params):
    """Apply primitive ``prim`` to ``args``: evaluate it, or hand it to the innermost trace that boxes an arg."""
    stack = top = None
    for a in args:  # one pass: plain arguments cost no thread-state lookup
        if type(a) in BOX_TYPES:
            if stack is None:
                stack = _thread.stack
                if stack.lifters:
                    return _bind_lifted(prim, args, params, stack)
            t = a._trace
            if t is None or t._stack is not stack:
                return bind(prim, [_settle(x, stack) for x in args], params)
            if top is None or t.level > top.level:
                top = t
    if top is None:
        return prim.impl(*args, **params)
    return top.process(prim, args, params)


def _bind_lifted(prim, args, params, stack):
    """``bind`` while Tape blocks watch values by identity: lift the arguments first."""
    args = _lift(args, stack.lifters)
    top = None
    for a in args:
        if type(a) in BOX_TYPES:
            t = a._trace
            if t is None or t._stack is not stack:
                return _bind_lifted(prim, [_settle(x, stack) for x in args], params, stack)
            if top is None or t.level > top.level:
                top = t
    if top is None:
        return prim.impl(*args, **params)
    return top.process(prim, args, params)


def _lift(args, lifters):
    lifted = None
    for k, a in enumerate(args):
        if type(a) in BOX_TYPES:
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
    while type(x) in BOX_TYPES and (x._trace is None or x._trace._stack is not stack):
        x = x._primal
    return x


def raw(x):
    """The backend array under any number of boxes."""
    while type(x) in BOX_TYPES:
        x = x._primal
    return x


def lower(x, trace):
    """``x`` seen one level below ``trace``: its primal if ``trace`` boxes it, else ``x`` itself."""
    if type(x) in BOX_TYPES and x._trace is trace:
        return x._primal
    return x


def aval(value):
    """(shape, dtype) of a value; Python scalars have dtype None (they adopt the other operand's). Each batching
    box (``vmap``) around the value hides the leading axis of its primal: the batch axis."""
    hidden = 0
    while type(value) in BOX_TYPES:
        hidden += value._batch_dims
        value = value._primal
    try:
        return (value.shape[hidden:] if hidden else value.shape), value.dtype
    except AttributeError:
        return (), None


def _batch_traces(value, stack):
    """The recording batching traces (``vmap``) boxing ``value``, innermost (lowest level) first."""
    found = []
    while isinstance(value, Tensor):
        if value._batch_dims and value._trace is not None and value._trace._stack is stack:
            found.append(value._trace)
        value = value._primal
    return found[::-1]


def concrete(x, what="a Python value"):
    """The backend array under ``x``'s boxes, for a conversion to Python data (``bool``, ``float``, an index);
    refused with a clear error when ``x`` is batched by a ``vmap`` in progress (it differs between examples)."""
    if isinstance(x, Tensor) and _batch_traces(x, _thread.stack):
        raise TypeError(
            f"vmap: a batched value cannot be used as {what} (its value differs between the examples of the "
            f"batch, e.g. in an `if` or `while` condition, float(), int() or an index); use gpuad.numpy.where "
            f"for data-dependent choices, or pass the value with in_axes=None if it is the same for every example")
    return raw(x)


def is_batched(x) -> bool:
    """Whether ``x`` is batched by a ``vmap`` in progress in the calling thread."""
    return isinstance(x, Tensor) and bool(_batch_traces(x, _thread.stack))


def refuse_batched(what, *values):
    """Refuse, with a clear error, values batched by a vmap in progress in a function not written for them."""
    if any(is_batched(v) for v in values):
        raise NotImplementedError(f"vmap: {what} does not support batched values yet; apply it outside the vmapped "
                                  f"function, or to each example")


def constant(x):
    """``x`` as a constant to every derivative trace (as ``raw``), still batched by the vmaps in progress."""
    return map_values(_identity, x)


def _identity(v):
    return v


def map_values(fn, *values, align=False):
    """``fn`` applied to the backend arrays under ``values`` (a constant to every derivative trace, as ``raw``),
    keeping the batch of every ``vmap`` in progress: batched values reach ``fn`` with their batch axes in front
    (one per vmap, innermost last; size 1 where a value is not batched by that vmap) and the result is boxed as
    batched again, so ``fn`` must treat leading axes as a stack (negative axes, broadcasting). ``align=True``
    (elementwise ``fn``) also gives batched values of lower rank than the others leading axes of length 1."""
    stack = _thread.stack
    batches = [_batch_traces(v, stack) if isinstance(v, Tensor) else () for v in values]
    traces = sorted({t for b in batches for t in b}, key=lambda t: t.level)
    if not traces:
        return fn(*[raw(v) for v in values])
    rank = max(len(aval(v)[0]) for v in values) if align else 0
    args = []
    for v, b in zip(values, batches):
        r = raw(v)
        if b:
            shape = aval(v)[0]
            sizes = iter(r.shape)
            lead = tuple(next(sizes) if t in b else 1 for t in traces)
            pad = (1,) * max(rank - len(shape), 0)
            if lead + pad + shape != r.shape:
                r = r.reshape(lead + pad + shape)
        args.append(r)
    out = fn(*args)
    if type(out) is tuple:  # several results: each boxed
        return tuple(_boxed(o, traces) for o in out)
    return _boxed(out, traces)


def _boxed(out, traces):
    for t in traces:
        out = t.box(out)
    return out


# Floating types NumPy does not know as such: ml_dtypes' bfloat16 (NumPy and CuPy accept it as an array dtype,
# with kind "V"). Recognized by name, so gpuad never imports ml_dtypes itself.
EXTENSION_FLOATS = frozenset({"bfloat16"})  # backend.EXTENSION_FLOATS repeats it (the backend imports nothing of gpuad)


def is_real_float_dtype(dtype) -> bool:
    """The one decision of "real floating dtype": NumPy's float kinds and the extension floats (bfloat16)."""
    if dtype is None:
        return False
    kind = dtype.kind  # (inlined: this runs once or twice per recorded op)
    return kind == "f" or (kind == "V" and dtype.name in EXTENSION_FLOATS)


def is_float_dtype(dtype) -> bool:
    """Floating or complex: a dtype that carries derivatives."""
    if dtype is None:
        return False
    kind = dtype.kind
    return kind == "f" or kind == "c" or (kind == "V" and dtype.name in EXTENSION_FLOATS)


def is_complex_dtype(dtype) -> bool:
    """Complex (NumPy's kind "c"); None (a Python scalar's aval dtype) is not."""
    return dtype is not None and dtype.kind == "c"


def is_half_dtype(dtype) -> bool:
    """float16 or bfloat16, the real floating types of two bytes: the narrow types whose arithmetic gpuad does in
    float32 (fused kernels, reduction accumulators). (By size: NumPy computes ``dtype.name`` in Python, slowly.)"""
    return dtype is not None and dtype.itemsize == 2 and is_real_float_dtype(dtype)


def stop_gradient(x):
    """``x`` as a constant: its value, with zero derivative with respect to everything (under vmap, still
    batched)."""
    return constant(x)


class no_grad:
    """Context (or decorator) in which reverse-mode tapes of this thread record nothing; results are plain
    arrays. Other threads keep recording."""

    def __enter__(self):
        _thread.stack.no_grad += 1
        return self

    def __exit__(self, *exc):
        _thread.stack.no_grad -= 1
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
    _batch_dims = 0  # 1 on the boxes of a batching trace (vmap): their primal's leading axis is the batch axis

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        BOX_TYPES.add(cls)  # each interpreter's box class

    def __init__(self, trace, primal):
        self._trace = trace
        self._primal = primal

    @property
    def data(self):
        return raw(self)

    @property
    def shape(self):
        return aval(self)[0]

    @property
    def dtype(self):
        return raw(self).dtype

    @property
    def ndim(self):
        return len(aval(self)[0])

    @property
    def size(self):
        return math.prod(aval(self)[0])

    def __repr__(self):
        return f"Tensor({raw(self)!r})"

    __hash__ = object.__hash__


# Tensor and its subclasses: ``type(x) in BOX_TYPES`` is the hot-path spelling of ``isinstance(x, Tensor)``.
BOX_TYPES: set = {Tensor}
