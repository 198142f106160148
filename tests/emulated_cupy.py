"""An emulated CuPy: gpuad's CuPy code path, end to end, on a machine without a GPU.

The real ``cupy`` package (cupy-cuda13x) imports without a GPU, but it cannot make an array there. This module
builds a stand-in that gpuad's backend treats as CuPy (``backend.register_cupy_like``), with

* **CuPy's real signatures**: every function of ``cupy`` (``cupy.linalg``, ``cupyx``, ...) is NumPy's function of
  the same name, but each call is first bound against the real CuPy function's ``inspect.signature``. A name CuPy
  lacks raises AttributeError and a keyword (or positional argument) it does not accept raises TypeError, as on
  the GPU; a few documented value rules (``subok`` must be None) are checked too, and where CuPy's results
  differ from NumPy's (``linalg.eig`` is complex for real input) the emulation gives CuPy's. CuPy's ufuncs take only
  ``out``, ``dtype`` and ``casting``; the array methods are bound against CuPy's (read from their Cython
  docstrings). Array attributes CuPy's ndarray lacks (``ctypes``, ``resize``, ...) raise
  AttributeError, NumPy functions called on an emulated array dispatch to (emulated) CuPy's function as CuPy's
  ``__array_function__`` does, and mixing an emulated array with a NumPy array in an operator raises TypeError.
* **CuPy's dtypes and orderings**: every ufunc call (operators included, and ``where``, ``clip``, ``nan_to_num``
  over CuPy's internal ufuncs) runs the loop the real CuPy's type table picks (``_loop``): TypeError where CuPy
  has none (complex ``clip``), CuPy's wider result where its table lacks NumPy's loop (bfloat16 ``where`` gives
  float32). The sorts take Thrust's dtypes (no bfloat16), argsort is stable, (arg)partition of a long axis does
  not put NaN last, quantile/percentile know five methods and do not propagate NaN, scatter_* their kernels'
  dtypes, each rule citing the CuPy source it follows (``_THRUST_TYPES``, ``_SCATTER_TYPES``, ``_CUPY_RESULTS``).
* **Arrays held by NumPy**: ``ndarray`` is a subclass of ``numpy.ndarray``; reductions give 0-d arrays, never
  scalars (as CuPy's do).
* **Device-to-host transfers detected**: ``bool()``, ``float()``, ``int()``, ``complex()``, ``.item()``,
  ``.tolist()``, ``.get()``, ``cupy.asnumpy`` and boolean-mask indexing (its result size must reach the host)
  each count one transfer in ``HOST_SYNCS``; inside ``no_host_sync()`` they raise ``HostSyncError`` instead,
  naming the operation. Not caught: ``numpy.asarray(x)`` on an emulated array (NumPy reads a subclass without
  asking it; real CuPy raises TypeError there), so gpuad moves arrays to the host only through
  ``backend.to_numpy`` (``.get()``).
* **Setting up the emulation is not a transfer**: the emulated functions hand NumPy plain views, so NumPy's own
  code never trips the checks; only gpuad's reads do.
* **Generated kernels launched by gpuad's own CUDA launcher**: ``CudaLauncher(cupy=<this module>)`` is the
  emulated module's default launcher, so the very code that runs on the GPU (one ``RawModule`` per backward
  pass, ``get_function``, the argument conversion, the grid) runs here; ``RawModule`` compiles the CUDA source
  for the host (a small shim supplies ``blockIdx``/``threadIdx``/``blockDim``/``gridDim``) and a launch runs
  every (block, thread) of the grid in turn. A kernel argument that is not a device array or a NumPy scalar of
  a C type fails, as it would on the GPU. ``LAUNCHES`` lists (kernel, grid, block) of every launch.

``install()`` registers it (idempotent); ``emulated()`` also makes it the default backend for a block, like a
machine with a GPU. ``AVAILABLE``/``REASON`` say whether the real CuPy package could be imported.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import tempfile
import types

import numpy as np

try:
    import cupy as _real_cupy
    import cupyx as _real_cupyx
    from cupy._core._scalar import numpy_dtype_from_pyscalar as _numpy_dtype_from_pyscalar
    AVAILABLE, REASON = True, ""
except Exception as e:  # no cupy-cuda13x installed (e.g. not Linux x86_64)
    _real_cupy = _real_cupyx = None
    AVAILABLE, REASON = False, f"the cupy package does not import here ({type(e).__name__}: {e})"


class HostSyncError(AssertionError):
    """A device-to-host transfer (a value read by the host) where none is allowed."""


HOST_SYNCS: list[str] = []  # every transfer, in order (cleared by the tests that count them)
_forbidden = [0]


@contextlib.contextmanager
def no_host_sync():
    """A block in which any device-to-host transfer of an emulated array raises ``HostSyncError``."""
    _forbidden[0] += 1
    try:
        yield
    finally:
        _forbidden[0] -= 1


def _host_sync(what):
    if _forbidden[0]:
        raise HostSyncError(f"device-to-host transfer: {what} (it would stall the GPU stream)")
    HOST_SYNCS.append(what)


# ---- conversion between emulated and plain NumPy arrays --------------------------------------------------------

def _plain(x):
    """Arguments as NumPy sees them: emulated arrays become plain views (recursively in lists and tuples)."""
    if isinstance(x, ndarray):
        return x.view(np.ndarray)
    if type(x) in (list, tuple):
        return type(x)(_plain(v) for v in x)
    return x


def _emulated(x):
    """Results as CuPy gives them: arrays become emulated arrays, NumPy scalars 0-d arrays."""
    if isinstance(x, np.ndarray):
        return x if isinstance(x, ndarray) else x.view(ndarray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(ndarray)
    if isinstance(x, tuple):
        values = [_emulated(v) for v in x]
        return type(x)(*values) if hasattr(x, "_fields") else tuple(values)
    if type(x) is list:
        return [_emulated(v) for v in x]
    return x


def _reject_numpy(values, what):
    for v in values:
        if type(v) is np.ndarray:
            raise TypeError(f"Unsupported type {type(v)} in {what}: a NumPy array cannot meet a CuPy array "
                            f"(move it with cupy.asarray first)")


# ---- CuPy's kernels' type tables: which loop a ufunc runs (read from the real CuPy) --------------------------

def _weak_kind(t):
    """CuPy's kind score (cupy/_core/_kernel.pyx, _get_kind_score): bool 0, integer 1, inexact 2."""
    if issubclass(t, (np.bool_, bool)):
        return 0
    if issubclass(t, (np.integer, int)):
        return 1
    if issubclass(t, (np.inexact, float, complex)):
        return 2
    return 3


_LOOPS: dict = {}


def _loop(real, args, dtype=None):
    """The loop (an ``_Op``: ``in_types``, ``out_types``) CuPy's ufunc ``real`` runs on ``args`` (plain), as
    cupy/_core/_kernel.pyx (``_Ops.guess_routine``) picks it: the first loop of its type table that every
    operand casts to safely, Python scalars weak only where an array's kind is at least theirs
    (``_check_should_use_weak_scalar``); with ``dtype=``, the loop whose outputs have that dtype. CuPy's tables
    lack loops NumPy has (no bfloat16 in ``where`` or ``clip``, no complex in ``clip`` or ``logical_and``, ...):
    TypeError there, as on the GPU; a loop of wider types than NumPy's gives CuPy's wider result. None for
    arguments CuPy would not take as operands (left to NumPy's error)."""
    if _real_cupy is None or not hasattr(real, "_ops"):
        return None
    types, weaks = [], []
    for a in args[:real.nin]:
        if isinstance(a, (np.ndarray, np.generic)):
            types.append(a.dtype)
            weaks.append(False)
        else:
            t, weak = _numpy_dtype_from_pyscalar(a)
            if t is None:
                return None
            types.append(t)
            weaks.append(weak)
    if dtype is not None:
        key = (real.name, np.dtype(dtype))
    else:
        strong = [_weak_kind(t.type) for t, w in zip(types, weaks) if not w]
        weak = [_weak_kind(w) for w in weaks if w]
        if not weak or not strong or max(strong) < max(weak):
            weaks = [False] * len(types)
        key = (real.name, tuple(types), tuple(weaks))
    op = _LOOPS.get(key, _ABSENT_LOOP)
    if op is _ABSENT_LOOP:
        if dtype is not None:
            op = (real._out_ops or real._ops)._guess_routine_from_dtype(np.dtype(dtype))
        else:
            op = real._ops._guess_routine_from_in_types(tuple(types), tuple(weaks) if any(weaks) else None)
        _LOOPS[key] = op
    if op is None:
        raise TypeError(f"Wrong type ({tuple(types) if dtype is None else dtype}) of arguments for {real.name} "
                        f"(emulated CuPy 14: its type table has no loop for them)")
    if op.error_func is not None:
        op.error_func()  # CuPy's own error for this loop (boolean negative, ...)
    return op


_ABSENT_LOOP = object()


def _run_loop(numpy_ufunc, op, args, kwargs):
    """NumPy's ufunc computed in the loop CuPy runs: the operands cast to its input types, the results to its
    output types (a bfloat16 ``where`` computes in float32 and gives float32, as CuPy's does)."""
    if op is None:
        return numpy_ufunc(*args, **kwargs)
    cast = [np.asarray(a).astype(t, copy=False) if isinstance(a, np.ndarray) or t != np.asarray(a).dtype
            else a for a, t in zip(args, op.in_types)]
    kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}
    out = kwargs.get("out")
    if out is not None:
        kwargs.setdefault("casting", "unsafe")
    result = numpy_ufunc(*cast, *args[len(cast):], **kwargs)
    if out is not None:
        return result
    if isinstance(result, tuple):
        return tuple(np.asarray(r).astype(t, copy=False) for r, t in zip(result, op.out_types))
    return np.asarray(result).astype(op.out_types[0], copy=False)


def _cupy_ufunc(numpy_ufunc):
    """CuPy's ufunc of NumPy's ``numpy_ufunc`` (None where CuPy has no such ufunc: matmul, ...)."""
    real = getattr(_real_cupy, numpy_ufunc.__name__, None) if _real_cupy is not None else None
    return real if _real_cupy is not None and isinstance(real, _real_cupy.ufunc) else None


# ---- the array type ----------------------------------------------------------------------------------------

class _Missing:
    """An attribute NumPy's ndarray has and CuPy's lacks."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        raise AttributeError(f"'cupy.ndarray' object has no attribute '{self.name}' (emulated CuPy)")


class ndarray(np.ndarray):
    """CuPy's ndarray, emulated: NumPy memory, CuPy's behaviour where gpuad can observe the difference."""

    __module__ = "cupy"  # what CuPy's arrays say (gpuad never decides by it: the backend hook registers the type)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(_foreign(v) for v in inputs):
            return NotImplemented  # another array type (a gpuad Tensor) handles the operation
        _reject_numpy(inputs, f"cupy.{ufunc.__name__}")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _plain(out)
        real = _cupy_ufunc(ufunc) if method == "__call__" else None
        if real is not None:
            plain = _plain(inputs)
            result = _run_loop(ufunc, _loop(real, plain, kwargs.get("dtype")), plain, kwargs)
        else:
            result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _emulated(result)

    def __array_function__(self, func, types, args, kwargs):
        # CuPy implements NEP 18: numpy.f(cupy_array) runs cupy.f, or fails when CuPy has no f.
        if any(not issubclass(t, np.ndarray) for t in types):
            return NotImplemented
        parts = func.__module__.split(".")[1:]
        module = cupy
        try:
            for part in parts:
                if part in ("_core", "lib") or part.startswith("_"):
                    continue
                module = getattr(module, part)
            target = getattr(module, func.__name__)
        except AttributeError:
            return NotImplemented
        return target(*args, **kwargs)

    def __getitem__(self, index):
        if _has_mask(index):
            _host_sync("boolean-mask indexing (the result's size)")
        return _emulated(super().__getitem__(_plain(index)))

    def __setitem__(self, index, value):
        super().__setitem__(_plain(index), _plain(value))  # a device-to-device copy (NumPy would read a 0-d value)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    # device-to-host transfers
    def __bool__(self):
        _host_sync("bool() of an array")
        return super().__bool__()

    def __float__(self):
        _host_sync("float() of an array")
        return super().__float__()

    def __int__(self):
        _host_sync("int() of an array")
        return super().__int__()

    def __complex__(self):
        _host_sync("complex() of an array")
        return super().__complex__()

    def item(self, *args):
        _host_sync(".item()")
        return super().item(*args)

    def tolist(self):
        _host_sync(".tolist()")
        return super().tolist()

    def get(self, stream=None, order="C", out=None, blocking=True):
        _host_sync(".get()")
        return np.array(self.view(np.ndarray), order=order)

    def __index__(self):
        raise TypeError("only integer scalar arrays can be converted to a scalar index (cupy.ndarray has no "
                        "__index__)")

    def __repr__(self):
        return "emulated cupy " + repr(self.view(np.ndarray))

    ctypes, resize, getfield, setfield = _Missing(), _Missing(), _Missing(), _Missing()
    setflags, to_device, __contains__ = _Missing(), _Missing(), _Missing()


def _foreign(value):
    return not isinstance(value, np.ndarray) and hasattr(type(value), "__array_ufunc__") and not isinstance(
        value, np.generic)


def _method_signature(name):
    """CuPy's ndarray methods are Cython: their signature is the first line of the docstring (``embedsignature``),
    e.g. ``_ndarray_base.sum(self, axis=None, dtype=None, out=None, keepdims=False)``. None where unreadable."""
    lines = (getattr(_real_cupy.ndarray, name).__doc__ or "").strip().splitlines()
    match = re.match(r"[\w.]+\((.*)\)\s*(->.*)?$", lines[0]) if lines else None
    if match is None:
        return None
    params = []
    for part in match.group(1).split(","):
        declared, eq, default = part.strip().partition("=")
        params.append(declared.split()[-1] + (f"={default}" if eq else ""))  # drop Cython types (int axis)
    namespace = {}
    try:
        exec(f"def method({', '.join(params)}): pass", {}, namespace)
    except SyntaxError:
        return None
    return inspect.signature(namespace["method"])


def _checked_method(name, signature, numpy_method):
    def method(self, *args, **kwargs):
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as e:
            raise TypeError(f"cupy.ndarray.{name}(): {e} (CuPy's signature is {name}{signature})") from None
        return _emulated(numpy_method(self, *_plain(args), **_plain_kwargs(kwargs)))
    method.__name__ = name
    return method


def _sort_in_place(self, axis=-1, kind=None):
    _thrust(self.dtype, "ndarray.sort")
    self.view(np.ndarray).sort(axis=axis, kind="stable")


def _partition_in_place(self, kth, axis=-1):
    plain = self.view(np.ndarray)
    plain[...] = _partition(plain, kth, axis)


# The array methods computed as CuPy computes them (the module functions' rules above): name -> the method.
_CUPY_METHODS = {
    "sort": _sort_in_place, "partition": _partition_in_place,
    "argsort": lambda self, axis=-1, kind=None: _sorting(_stable_argsort, "ndarray.argsort")(
        self.view(np.ndarray), axis),
    "argpartition": lambda self, kth, axis=-1: _argpartition(self.view(np.ndarray), kth, axis),
    "clip": lambda self, min=None, max=None, out=None: _clip(self.view(np.ndarray), min, max, out),
    "var": lambda self, axis=None, dtype=None, out=None, ddof=0, keepdims=False: _variance(False)(
        self.view(np.ndarray), axis, dtype, out, ddof, keepdims),
    "std": lambda self, axis=None, dtype=None, out=None, ddof=0, keepdims=False: _variance(True)(
        self.view(np.ndarray), axis, dtype, out, ddof, keepdims),
}


def _check_methods():
    """Bind the methods both ndarrays have to CuPy's signatures (a NumPy-only keyword fails, as on the GPU)."""
    for name in dir(_real_cupy.ndarray):
        if name.startswith("_") or name in ndarray.__dict__ or name in ("view",):
            continue
        numpy_method = _CUPY_METHODS.get(name) or getattr(np.ndarray, name, None)
        if not callable(numpy_method):
            continue
        signature = _method_signature(name)
        if signature is not None:
            setattr(ndarray, name, _checked_method(name, signature, numpy_method))


def _has_mask(index):
    for i in index if isinstance(index, tuple) else (index,):
        if isinstance(i, np.ndarray) and i.dtype == np.bool_ and i.ndim > 0:
            return True
        if type(i) is list and i and all(type(v) is bool for v in i):
            return True
    return False


# ---- the module ----------------------------------------------------------------------------------------------

# Value rules CuPy checks in the function body (not visible in its signature): name -> {keyword: allowed value}
_VALUE_RULES = {name: {"subok": (None,)} for name in ("full_like", "zeros_like", "ones_like", "empty_like")}
_VALUE_RULES.update({name: {"kind": (None, "stable")} for name in ("sort", "argsort")})
_UFUNC_KEYWORDS = {"out", "dtype", "casting"}


def _geev(a):
    """CuPy's eig (cuSOLVER's geev): complex eigenvalues and eigenvectors for real input too, whatever the
    spectrum (NumPy's are real where the spectrum is), as a plain tuple."""
    w, v = np.linalg.eig(a)
    dtype = np.result_type(w.dtype, np.complex64)
    return w.astype(dtype), v.astype(dtype)


def _internal_ufunc(module, name):
    import importlib
    return getattr(importlib.import_module(module), name)


def _where(condition, x=None, y=None):
    """cupy.where (cupy/_sorting/search.py): ``_where_ufunc`` on the condition as bool, whose type table has
    bool, the integers, float16/32/64 and complex, but no bfloat16: bfloat16 values give float32 there."""
    if x is None and y is None:
        return np.nonzero(condition)
    args = [condition.astype(bool, copy=False), x, y]
    op = _loop(_internal_ufunc("cupy._sorting.search", "_where_ufunc"), args)
    return np.where(*[np.asarray(a).astype(t, copy=False) for a, t in zip(args, op.in_types)]).astype(
        op.out_types[0], copy=False)


def _clip(a, a_min=None, a_max=None, out=None):
    """cupy.clip (cupy/_math/misc.py -> ``_ndarray_clip``, cupy/_core/_routines_math.pyx): a missing bound of a
    float16/32/64 or integer array is that dtype's infinity or extreme, then the ``_clip`` ufunc, whose type
    table has bool, the integers and float16/32/64, but no complex (TypeError) and no bfloat16 (float32)."""
    if a.dtype.kind == "f":
        a_min = a.dtype.type("-inf") if a_min is None else a_min
        a_max = a.dtype.type("inf") if a_max is None else a_max
    elif a.dtype.kind in "iu":
        a_min = np.iinfo(a.dtype).min if a_min is None else a_min
        a_max = np.iinfo(a.dtype).max if a_max is None else a_max
    if a_min is None or a_max is None:
        raise TypeError(f"Unsupported type {type(None)} (emulated CuPy 14: clip of {a.dtype} needs both bounds)")
    args = [a, a_min, a_max]
    op = _loop(_internal_ufunc("cupy._core._routines_math", "_clip"), args)
    x, lo, hi = [np.asarray(v).astype(t, copy=False) for v, t in zip(args, op.in_types)]
    # the kernel's own formula, in1 > in2 ? in2 : (in0 < in1 ? in1 : (in0 > in2 ? in2 : in0)): a NaN bound is
    # ignored (NumPy's clip gives NaN)
    with np.errstate(invalid="ignore"):
        result = np.where(lo > hi, hi, np.where(x < lo, lo, np.where(x > hi, hi, x))).astype(op.out_types[0],
                                                                                             copy=False)
    if out is not None:
        out[...] = result
        return out
    return result


def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """cupy.nan_to_num (cupy/_math/misc.py, ``_check_nan_inf``): the replacement values are made in the dtype
    (of the parts, for complex) only where it is float16/32/64; for any other dtype, bfloat16 included, every
    replacement is 0 (NaN and both infinities become 0). NumPy leaves bfloat16 (not an inexact type) as it is."""
    x = np.asarray(x)
    part = np.dtype(x.dtype.char.lower()) if x.dtype.char in "FD" else x.dtype
    if part.char in "efd" or x.dtype.kind in "biu":
        return np.nan_to_num(x, copy=copy, nan=nan, posinf=posinf, neginf=neginf)
    wide = x.astype(np.float32)
    return np.where(np.isfinite(wide), wide, 0).astype(x.dtype)


# CuPy's sorts run Thrust (cupy/cuda/thrust.pyx), which takes the dtypes of cupy/cuda/common.pyx's
# _get_dtype_id: no bfloat16 (NotImplementedError). NaN goes last and complex values sort lexicographically, as in
# NumPy (cupy/cuda/cupy_thrust.cu), so the values are NumPy's.
_THRUST_TYPES = frozenset("bool int8 uint8 int16 uint16 int32 uint32 int64 uint64 float16 float32 float64 "
                          "complex64 complex128".split())


def _thrust(dtype, what):
    if np.dtype(dtype).name not in _THRUST_TYPES:
        raise NotImplementedError(f"Sorting arrays with dtype '{np.dtype(dtype)}' is not supported (emulated CuPy "
                                  f"14: {what} sorts with Thrust, which takes no {np.dtype(dtype)})")


def _partition_sorts(a, kth, axis, arg):
    """Whether CuPy's (arg)partition sorts the axis fully (Thrust) rather than run its selection kernel
    (cupy/_core/_routines_sorting.pyx, _ndarray_partition and _ndarray_argpartition: a short axis, a large kth).
    Its kth is a Python int or a sequence (``isinstance(kth, int)``, else ``for k in kth``): a NumPy integer
    raises there, as here."""
    if not isinstance(kth, int) and np.ndim(kth) == 0:
        raise TypeError(f"'{type(kth).__name__}' object is not iterable (emulated CuPy 14: kth must be a Python "
                        f"int or a sequence)")
    length = a.shape[axis] if a.ndim else 1
    if length == 0:
        return True
    max_k = max(k + length if k < 0 else k for k in ((kth,) if np.ndim(kth) == 0 else kth))
    max_k = max(32, 1 << int(max_k).bit_length())
    t, sz = 4, 512
    while sz > 0 and length // sz < max_k + 32 * t:
        sz //= 2
    sz *= a.size // length
    return length < 32 or (sz < 1 if arg else sz <= 32) or max_k >= 1024


def _kernel_order(a, axis):
    """What CuPy's selection kernel makes of NaN: its bitonic compare-and-swap steps compare with < and >, false
    for NaN, so a NaN is never moved after the numbers (NumPy puts NaN last). Emulated: NaN ordered first."""
    low = complex(-np.inf, -np.inf) if a.dtype.kind == "c" else -np.inf
    return np.argsort(np.where(np.isnan(a), low, a), axis=axis, kind="stable")


def _argpartition(a, kth, axis=-1):
    """cupy.argpartition: Thrust's full argsort where the axis is short or kth large, else a selection kernel that
    mishandles NaN (see _kernel_order)."""
    if axis is None:
        a, axis = a.ravel(), -1
    axis = axis % max(a.ndim, 1)
    if _partition_sorts(a, kth, axis, True):
        _thrust(a.dtype, "argpartition of a short axis")
        return np.argsort(a, axis=axis, kind="stable")
    if a.dtype.kind in "fc" and np.isnan(a).any():
        return _kernel_order(a, axis)
    return np.argpartition(a, kth, axis=axis)


def _partition(a, kth, axis=-1):
    """cupy.partition: as _argpartition, on the values."""
    axis = axis % max(a.ndim, 1)
    if _partition_sorts(a, kth, axis, False):
        _thrust(a.dtype, "partition of a short axis")
        return np.sort(a, axis=axis)
    if a.dtype.kind in "fc" and np.isnan(a).any():
        return np.take_along_axis(a, _kernel_order(a, axis), axis=axis)
    return np.partition(a, kth, axis=axis)


def _sorting(numpy_fn, what, dtype_of=lambda a, *args, **kwargs: a.dtype):
    def fn(*args, **kwargs):
        _thrust(dtype_of(*args, **kwargs), what)
        return numpy_fn(*args, **kwargs)
    fn.__name__ = numpy_fn.__name__
    return fn


def _stable_argsort(a, axis=-1, kind=None):
    """CuPy's argsort is always stable (Thrust's stable_sort_by_key): ties keep their order."""
    return np.argsort(a, axis=axis, kind="stable")


def _median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """cupy.median partitions (cupy/_core/_routines_statistics.pyx, _median) at the middle, then checks for NaN
    (so NaN propagates, as in NumPy); the partition may sort (Thrust: no bfloat16)."""
    n = a.size if axis is None else int(np.prod([a.shape[i] for i in np.atleast_1d(axis)]))
    kth = [n // 2 - 1, n // 2] if n % 2 == 0 and n else [(n - 1) // 2]
    if axis is None or np.ndim(axis) or _partition_sorts(a, kth, axis % a.ndim, False):
        _thrust(a.dtype, "median (its partition of a short axis)")
    return np.median(a, axis=axis, out=out, overwrite_input=overwrite_input, keepdims=keepdims)


def _quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
              interpolation=None, _scale=1):
    """cupy.quantile and cupy.percentile (cupy/_statistics/order.py, _quantile_unchecked): five methods only
    (linear, lower, higher, midpoint, nearest; NumPy's others raise ValueError), and NaN is not propagated: the
    sorted values (NaN last) are interpolated like any others (NumPy gives NaN for a slice holding one). The
    dtype is ``result_type(a, q)``; the sort is Thrust's (no bfloat16)."""
    if interpolation is not None:
        method = interpolation
    q = np.true_divide(np.asarray(q), _scale) if _scale != 1 else np.asarray(q)
    if not (np.count_nonzero(0.0 <= q) and np.count_nonzero(q <= 1.0)):
        raise ValueError("Quantiles must be in the range [0, 1]")
    dtype = np.result_type(a, q)
    zerod = q.ndim == 0
    q = q[None] if zerod else q
    if q.ndim > 1:
        raise ValueError(f"Expected q to have a dimension of 1.\nActual: {q.ndim} != 1")
    axes = (axis,) if isinstance(axis, int) else axis
    if keepdims:
        keepdim = (1,) * a.ndim if axes is None else tuple(
            1 if i in {ax % a.ndim for ax in axes} else n for i, n in enumerate(a.shape))
    if axes is None:
        ap = a.ravel()
    else:
        axes = tuple(ax % a.ndim for ax in axes)
        keep = sorted(set(range(a.ndim)) - set(axes))
        ap = np.transpose(a, keep + list(axes)).reshape([a.shape[i] for i in keep] + [-1])
    _thrust(ap.dtype, "quantile")
    ap = np.sort(ap, axis=-1)
    n = ap.shape[-1]
    index = q * (n - 1.0)
    if method in ("inverted_cdf", "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf",
                  "hazen", "weibull", "median_unbiased", "normal_unbiased"):
        raise ValueError(f"'{method}' method is not yet supported. Please use any other method. (emulated CuPy 14)")
    if method in ("lower", "higher", "nearest"):
        index = {"lower": np.floor, "higher": np.ceil, "nearest": np.around}[method](index).astype(np.int32)
        ret = np.moveaxis(np.take(ap, index, axis=-1), -1, 0)
    elif method in ("midpoint", "linear"):
        if method == "midpoint":
            index = 0.5 * (np.floor(index) + np.ceil(index))
        below = np.floor(index).astype(np.intp)
        above = np.minimum(below + 1, n - 1)
        weight = (index - below).astype(dtype)
        low, high = np.take(ap, below, axis=-1), np.take(ap, above, axis=-1)
        with np.errstate(invalid="ignore"):
            diff = high - low
            ret = np.where(weight < 0.5, low + diff * weight, high - diff * (1 - weight)).astype(dtype)
        ret = np.moveaxis(ret, -1, 0)
    else:
        raise ValueError(f"Unexpected interpolation method.\nActual: '{method}' not in ('linear', 'lower', "
                         f"'higher', 'midpoint')")
    if zerod:
        ret = ret[0]
    if keepdims:
        ret = ret.reshape(((-1,) if q.size > 1 else ()) + keepdim)
    return np.array(ret, order="C")


def _percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *,
                interpolation=None):
    q = np.asarray(q)
    if not (np.count_nonzero(0.0 <= q) and np.count_nonzero(q <= 100.0)):
        raise ValueError("Percentiles must be in the range [0, 100]")
    return _quantile(a, q, axis, out, overwrite_input, method, keepdims, interpolation=interpolation, _scale=100)


def _solve(a, b):
    """cupy.linalg.solve (cupy/linalg/_solve.py): a b of two or more dimensions must have a's batch axes exactly
    (a.shape[:-1] == b.shape[:-1]); NumPy broadcasts them."""
    if b.ndim == 0:
        raise ValueError("b must have at least one dimension")
    if b.ndim > 1 and a.shape[:-1] != b.shape[:-1]:
        raise ValueError("a must have (..., M, M) shape and b must have (..., M, K) for multidimensional b "
                         "(emulated CuPy 14: no broadcasting of the batch axes)")
    return np.linalg.solve(a, b)


def _interp(x, xp, fp, left=None, right=None, period=None):
    """cupy.interp (cupy/_math/misc.py): ``x`` must be a C-contiguous array (NotImplementedError; a Python number
    has no ``flags``), and ``left``/``right`` are cast to fp's dtype first (NumPy takes them in float64: 0.1 stays
    0.1 beside a float32 fp, and 0.5 is not truncated beside an integer one)."""
    if not isinstance(x, np.ndarray):
        raise AttributeError(f"'{type(x).__name__}' object has no attribute 'flags' (emulated CuPy 14: interp's x "
                             f"must be an array)")
    if not x.flags.c_contiguous:
        raise NotImplementedError("Non-C-contiguous x is currently not supported")
    cast = [None if v is None else np.asarray(v, fp.dtype) for v in (left, right)]
    return np.interp(x, xp, fp, *cast, period=period)


def _variance(root):
    def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        """cupy.var and cupy.std (cupy/_core/_routines_statistics.pyx, _var): without dtype=, a dtype other than
        bool, integer, float16/32/64 or complex (bfloat16) is reduced by the float64 kernel about its mean (in
        its own dtype) and comes back float64; NumPy keeps bfloat16."""
        if dtype is not None or out is not None or a.dtype.kind in "biufc":
            return (np.std if root else np.var)(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims)
        axes = tuple(range(a.ndim)) if axis is None else (axis,) if np.ndim(axis) == 0 else tuple(axis)
        mean = np.mean(a.astype(np.float32), axis=axes, keepdims=True).astype(a.dtype).astype(np.float64)
        n = max(int(np.prod([a.shape[i] for i in axes])) - ddof, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            result = np.sum((a.astype(np.float64) - mean) ** 2, axis=axes, keepdims=keepdims) * (
                1.0 / n if n else np.nan)
        return np.sqrt(result) if root else result
    var.__name__ = "std" if root else "var"
    return var


# Where CuPy's results differ from NumPy's function of the same name: qualname -> the emulation
_CUPY_RESULTS = {
    "cupy.linalg.eig": _geev, "cupy.linalg.eigvals": lambda a: _geev(a)[0], "cupy.linalg.solve": _solve,
    "cupy.where": _where, "cupy.clip": _clip, "cupy.nan_to_num": _nan_to_num, "cupy.interp": _interp,
    "cupy.var": _variance(False), "cupy.std": _variance(True),
    "cupy.quantile": _quantile, "cupy.percentile": _percentile, "cupy.median": _median,
    "cupy.partition": _partition, "cupy.argpartition": _argpartition,
    "cupy.sort": _sorting(np.sort, "sort"), "cupy.argsort": _sorting(_stable_argsort, "argsort"),
    "cupy.lexsort": _sorting(np.lexsort, "lexsort", lambda keys: np.asarray(keys).dtype),
    "cupy.sort_complex": _sorting(np.sort_complex, "sort_complex"), "cupy.unique": _sorting(np.unique, "unique"),
    "cupy.nanmedian": _sorting(np.nanmedian, "nanmedian")}


def _signature(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _function(qualname, real, numpy_fn):
    """NumPy's ``numpy_fn`` called as CuPy's ``real`` would be: arguments bound to its signature first."""
    signature = _signature(real)
    rules = _VALUE_RULES.get(qualname.rsplit(".", 1)[-1], {})

    @functools.wraps(numpy_fn)
    def call(*args, **kwargs):
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{qualname}(): {e} (CuPy's signature is {qualname}{signature})") from None
        for key, allowed in rules.items():
            if key in kwargs and not any(kwargs[key] is a or kwargs[key] == a for a in allowed):
                raise TypeError(f"{qualname}(): {key}={kwargs[key]!r} is not supported (CuPy needs {allowed!r})")
        return _emulated(numpy_fn(*_plain(args), **_plain_kwargs(kwargs)))

    call.__qualname__ = call.__name__ = qualname.rsplit(".", 1)[-1]
    del call.__wrapped__  # inspect.signature(call) is CuPy's, not NumPy's
    if signature is not None:
        call.__signature__ = signature
    return call


def _plain_kwargs(kwargs):
    return {k: _plain(v) for k, v in kwargs.items()}


class _Ufunc:
    """A CuPy ufunc: NumPy's, taking only CuPy's keywords, with the methods CuPy's has."""

    def __init__(self, qualname, real, numpy_ufunc):
        self._qualname, self._real, self._np = qualname, real, numpy_ufunc
        self.__name__ = numpy_ufunc.__name__
        self.nin, self.nout = numpy_ufunc.nin, numpy_ufunc.nout

    def __call__(self, *args, **kwargs):
        unknown = set(kwargs) - _UFUNC_KEYWORDS
        if unknown:
            raise TypeError(f"{self._qualname}() got unexpected keyword argument(s) {sorted(unknown)} (CuPy's "
                            f"ufuncs take {sorted(_UFUNC_KEYWORDS)})")
        _reject_numpy(args, self._qualname)
        out = kwargs.get("out")
        plain, kwargs = _plain(args), _plain_kwargs(kwargs)
        result = _run_loop(self._np, _loop(self._real, plain, kwargs.get("dtype")), plain, kwargs)
        return out if out is not None else _emulated(result)

    def __getattr__(self, name):
        if name in ("reduce", "accumulate", "at", "outer", "reduceat"):
            getattr(self._real, name)  # AttributeError where CuPy's ufunc lacks the method
            fn = getattr(self._np, name)

            def method(*args, **kwargs):
                _reject_numpy(args, f"{self._qualname}.{name}")
                return _emulated(fn(*_plain(args), **_plain_kwargs(kwargs)))
            return method
        raise AttributeError(f"'cupy.ufunc' object has no attribute '{name}' (emulated CuPy)")


class _Module(types.ModuleType):
    """``cupy`` (or one of its submodules), emulated: attributes resolved on first use against the real one."""

    def __init__(self, name, real, numpy_module, extra=None):
        super().__init__(name)
        self._real, self._numpy = real, numpy_module
        self.__dict__.update(extra or {})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        qualname = f"{self.__name__}.{name}"
        try:
            real = getattr(self._real, name)
        except AttributeError:
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}' (emulated CuPy: the real "
                                 f"CuPy lacks it too)") from None
        numpy_value = _CUPY_RESULTS.get(qualname) or getattr(self._numpy, name, _ABSENT)
        if isinstance(real, types.ModuleType):
            if numpy_value is _ABSENT or not isinstance(numpy_value, types.ModuleType):
                raise AttributeError(f"{qualname} is not emulated")
            value = _Module(qualname, real, numpy_value)
        elif numpy_value is _ABSENT:
            raise AttributeError(f"{qualname} exists in CuPy but has no NumPy counterpart to emulate it with")
        elif real is numpy_value or not callable(real) or isinstance(real, type):
            value = numpy_value  # dtypes, constants, numpy.dtype, ...
        elif isinstance(real, _real_cupy.ufunc):
            value = _Ufunc(qualname, real, numpy_value)
        else:
            value = _function(qualname, real, numpy_value)
        setattr(self, name, value)
        return value


_ABSENT = object()


def _asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return np.asarray(a, order=order)


def _get_array_module(*args):
    return cupy


# CuPy 14's scatter kernels (cupy/_core/_routines_indexing.pyx): the dtypes each takes (the values are cast to
# the target's first), and its float atomicMax/atomicMin (cupy/atomics.cuh) compute with fmaxf/fminf: NaN is
# skipped and a float64 result is rounded through float32. Emulated, so a direct float max/min scatter shows.
_SCATTER_TYPES = {"scatter_add": {"int32", "int64", "uint32", "uint64", "float16", "float32", "float64"},
                  "scatter_max": {"int32", "int64", "uint32", "uint64", "float32", "float64"}}
_SCATTER_TYPES["scatter_min"] = _SCATTER_TYPES["scatter_max"]


def _scatter(numpy_ufunc, name):
    def scatter(a, slices, value):  # arguments already plain
        if a.dtype.name not in _SCATTER_TYPES[name]:
            raise TypeError(f"cupyx.{name} only supports {sorted(_SCATTER_TYPES[name])} as data type, not "
                            f"{a.dtype.name} (emulated CuPy 14)")
        if name != "scatter_add" and a.dtype.kind == "f":  # fmaxf/fminf: NaN skipped, rounded through float32
            touched = np.zeros(a.shape, dtype=bool)
            touched[slices] = True
            (np.fmax if name == "scatter_max" else np.fmin).at(a, slices, np.asarray(value, dtype=a.dtype))
            a[touched] = a[touched].astype(np.float32)
            return
        numpy_ufunc.at(a, slices, value)
    scatter.__name__ = name
    checked = _function(f"cupyx.{name}", getattr(_real_cupyx, name), scatter)

    def fn(*args, **kwargs):
        target = args[0] if args else kwargs.get("a")
        if not isinstance(target, ndarray):
            raise TypeError(f"cupyx.{name}: the target must be a cupy.ndarray, not {type(target).__name__}")
        _reject_numpy(args[1:], f"cupyx.{name}")
        checked(*args, **kwargs)
    fn.__name__ = name
    fn.__signature__ = inspect.signature(checked)
    return fn




# ---- CUDA kernels: the CUDA source compiled for the host, launched as a grid --------------------------------

# What the CUDA build needs from the device that a host compiler lacks: the launch coordinates (set per emulated
# thread by the grid trampoline below) and the __global__ qualifier. The prelude takes its host branch (no
# __CUDACC__), the same per-element text both builds share.
_CUDA_SHIM = """// emulated CUDA (tests/emulated_cupy.py): a CUDA kernel source compiled by the host C++ compiler
struct gpuad_dim3 { unsigned int x, y, z; };
static gpuad_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
"""

_KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')
_CTYPES = {np.dtype(np.int64): "c_longlong", np.dtype(np.uint32): "c_uint32", np.dtype(np.float32): "c_float",
           np.dtype(np.float64): "c_double", np.dtype(np.int32): "c_int32"}


def _grid_trampoline(name, params):
    """A host function running kernel ``name`` for every (block, thread) of a one-dimensional grid, in order
    (the generated kernels' threads are independent: any order is a schedule the GPU may run)."""
    names = ", ".join(p.split()[-1].lstrip("*&") for p in params.split(","))
    return (f'extern "C" void gpuad_grid_{name}(unsigned int grid, unsigned int block, {params}) {{\n'
            f"    gridDim.x = grid; blockDim.x = block;\n"
            f"    for (unsigned int b = 0; b < grid; ++b) {{ blockIdx.x = b;\n"
            f"        for (unsigned int t = 0; t < block; ++t) {{ threadIdx.x = t; {name}({names}); }} }}\n}}\n")


class RawModule:
    """``cupy.RawModule`` emulated: the CUDA source (what NVRTC compiles on the GPU) compiled for the host with a
    small shim, one compiler run per module, cached on disk by the text's hash; ``get_function`` gives kernels
    launched as CuPy launches them, ``kernel(grid, block, args)``."""

    COMPILES: list[int] = []  # kernels per module compiled (the tests count compiler runs)

    def __init__(self, code=None, *, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=None):
        if code is None or path is not None:
            raise NotImplementedError("the emulated RawModule compiles code= only")
        self.code, self.options = code, tuple(options)
        self._library = None

    def _load(self):
        if self._library is None:
            import ctypes
            import hashlib
            import subprocess
            kernels = _KERNEL.findall(self.code)
            text = _CUDA_SHIM + self.code + "\n" + "".join(_grid_trampoline(n, p) for n, p in kernels)
            stem = os.path.join(_kernel_folder(), "cuda_" + hashlib.sha1(text.encode()).hexdigest()[:16])
            if not os.path.exists(stem + ".so"):
                private = f"{stem}.{os.getpid()}"  # parallel test workers may build the same module: rename last
                with open(private + ".cpp", "w") as f:
                    f.write(text)
                from gpuad.fusion.launchers import compiler
                result = subprocess.run([compiler(), "-std=c++17", "-O1", "-shared", "-fPIC", private + ".cpp",
                                         "-o", private + ".so"], capture_output=True, text=True)
                if result.returncode != 0:
                    raise RuntimeError(f"the emulated NVRTC (the host compiler) rejected {private}.cpp:\n"
                                       f"{result.stderr[-4000:]}")
                os.replace(private + ".so", stem + ".so")
                os.replace(private + ".cpp", stem + ".cpp")
            RawModule.COMPILES.append(len(kernels))
            self._library = ctypes.CDLL(stem + ".so")
        return self._library

    def get_function(self, name):
        if f'void {name}(' not in self.code:
            raise RuntimeError(f"no kernel named {name} in this module (emulated cupy.RawModule)")
        return _RawKernel(self, name)


class _RawKernel:
    LAUNCHES: list[tuple] = []  # (name, grid, block) of every launch

    def __init__(self, module, name):
        self.module, self.name = module, name
        self._fn = None

    def __call__(self, grid, block, args, **kwargs):
        import ctypes
        if self._fn is None:
            self._fn = getattr(self.module._load(), f"gpuad_grid_{self.name}")
            self._fn.restype = None
        if len(grid) != 1 or len(block) != 1:
            raise NotImplementedError("the emulated launch runs one-dimensional grids")
        converted = []
        for a in args:  # what CuPy's launch accepts, strictly: device arrays and NumPy scalars of a C type
            if isinstance(a, ndarray):
                converted.append(ctypes.c_void_p(a.view(np.ndarray).ctypes.data))
            elif isinstance(a, np.generic) and a.dtype in _CTYPES:
                converted.append(getattr(ctypes, _CTYPES[a.dtype])(a.item()))
            else:
                raise TypeError(f"kernel {self.name}: argument of type {type(a).__name__} (a NumPy array, or a "
                                f"Python scalar of no definite C type) cannot be passed to a CUDA kernel")
        _RawKernel.LAUNCHES.append((self.name, int(grid[0]), int(block[0])))
        self._fn(ctypes.c_uint(int(grid[0])), ctypes.c_uint(int(block[0])), *converted)


class _Device:
    """``cupy.cuda.Device()``: a small device (2 SMs), so the launcher's grid cap is met by larger arrays."""

    id = 0
    attributes = {"MultiProcessorCount": 2}

    def __init__(self, device=None):
        pass


def _kernel_folder():
    folder = os.path.join(tempfile.gettempdir(), f"gpuad-emulated-kernels-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    return folder


# ---- kernels and registration -------------------------------------------------------------------------------

if AVAILABLE:
    _check_methods()
    cupy = _Module("cupy", _real_cupy, np, {
        "ndarray": ndarray, "asnumpy": _asnumpy, "get_array_module": _get_array_module,
        "__version__": _real_cupy.__version__, "RawModule": RawModule,
        "cuda": types.SimpleNamespace(Device=_Device)})
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = _scatter(np.add, "scatter_add")
    cupyx.scatter_max = _scatter(np.maximum, "scatter_max")
    cupyx.scatter_min = _scatter(np.minimum, "scatter_min")
else:  # pragma: no cover - the tier skips
    cupy = cupyx = None


LAUNCHER = None
LAUNCHES = _RawKernel.LAUNCHES
_installed = []


def install():
    """Register the emulated CuPy with gpuad's backend (its arrays take the CuPy path) and its launcher."""
    global LAUNCHER
    if _installed or not AVAILABLE:
        return
    from gpuad import backend
    from gpuad.fusion import launchers
    from gpuad.fusion import CudaLauncher
    LAUNCHER = CudaLauncher(cupy=cupy)  # gpuad's CUDA launcher itself, over the emulated RawModule
    undo = backend.register_cupy_like(ndarray, cupy, cupyx)
    launchers.use_launcher(cupy, LAUNCHER)
    _installed.append(undo)


@contextlib.contextmanager
def emulated():
    """A block run as on a machine with a GPU: the emulated CuPy is the default backend (gnp.zeros, ...)."""
    from gpuad import backend
    install()
    previous = backend.set_default_module(cupy)
    try:
        yield cupy
    finally:
        backend.set_default_module(previous)


def asarray(x, dtype=None):
    """A NumPy value as an emulated CuPy array (a host-to-device copy)."""
    return np.array(x, dtype=dtype).view(ndarray)
