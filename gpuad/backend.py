"""The one backend seam: the only module that knows whether arrays are NumPy or CuPy.

Everything else asks ``array_module(*values)`` for the NumPy-compatible module that owns its operands and calls
NumPy-named functions on it. CuPy is imported lazily, only when a CuPy array shows up or the GPU backend is asked
for (``GPUAD_BACKEND=cupy``), so importing gpuad and running on the CPU never needs CuPy or a GPU. The few things
NumPy and CuPy spell differently (the scatters, moving an array to the host) live here too, and so do the
dtypes and orderings CuPy's kernels handle differently (``where``, the sorts, the scatters' dtypes and float
atomics, ``matches_numpy``): on either backend these give NumPy's results.
"""
from __future__ import annotations

import inspect
import operator
import os

import numpy

_SCALAR = object()  # marks Python and NumPy scalars and lists: they take the other operands' backend
PYTHON_SCALARS = (float, int, bool)
_module_by_type: dict[type, object] = {
    bool: _SCALAR, int: _SCALAR, float: _SCALAR, complex: _SCALAR, list: _SCALAR, tuple: _SCALAR,
    type(None): _SCALAR, numpy.ndarray: numpy,
}
_BUILTIN_TYPES = dict(_module_by_type)


def _classify(cls):
    for array_type, module in _registered.items():
        if issubclass(cls, array_type):
            return module
    if cls.__module__.split(".")[0] in ("cupy", "cupyx"):
        import cupy
        return cupy
    if issubclass(cls, numpy.ndarray):
        return numpy
    return _SCALAR  # Python and NumPy scalars, lists: they go with the other operands (CuPy accepts them too)


def array_module(*values):
    """The module (numpy or cupy) that owns these values; Python scalars defer to the others (default numpy).

    Raises TypeError when NumPy and CuPy arrays are mixed, naming both.
    """
    found = None
    for value in values:
        cls = type(value)
        module = _module_by_type.get(cls)
        if module is None:
            module = _module_by_type[cls] = _classify(cls)
        if module is _SCALAR:
            continue
        if found is None:
            found = module
        elif module is not found:
            raise TypeError(
                f"cannot mix a {found.__name__} array and a {module.__name__} array in one operation; move one "
                f"of them first (cupy.asarray(x) to the GPU, cupy.asnumpy(x) to the CPU)")
    return numpy if found is None else found


_parameters: dict = {}  # backend function -> (keyword names or None: any, positional capacity or None: any)


def accepts(function, args=(), kwargs=()) -> bool:
    """Whether the backend ``function`` (NumPy's or CuPy's) takes ``len(args)`` positional arguments and the
    keywords ``kwargs`` (a dict or names), by its signature (read once; a function without one takes anything).
    gpuad runs its own composition where CuPy's function lacks a keyword NumPy's has."""
    info = _parameters.get(function)
    if info is None:
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            info = (None, None)
        else:
            kinds = [p.kind for p in signature.parameters.values()]
            keywords = None if inspect.Parameter.VAR_KEYWORD in kinds else frozenset(
                p.name for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
            positional = None if inspect.Parameter.VAR_POSITIONAL in kinds else sum(
                k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD) for k in kinds)
            info = (keywords, positional)
        try:
            _parameters[function] = info
        except TypeError:  # unhashable callable: not cached
            pass
    keywords, positional = info
    if positional is not None and len(args) > positional:
        return False
    return keywords is None or all(k in keywords for k in kwargs)


# CuPy functions that exist but compute something else than NumPy's for some arguments: name -> the test.
# quantile and percentile (cupy/_statistics/order.py): five of NumPy's methods, q of at most one dimension, and a
# NaN is interpolated like a number instead of giving NaN. nan_to_num (cupy/_math/misc.py, _check_nan_inf): on a
# dtype other than float16/32/64, bfloat16 included, NaN and both infinities become 0 (NumPy leaves bfloat16, not
# an inexact type to it, as it is). clip (cupy/_core/_routines_math.pyx, _clip): no complex loop. partition and
# argpartition (cupy/_core/_routines_sorting.pyx): a selection kernel comparing with < and > on a long axis (NaN
# left where it falls), Thrust on a short one. sort, argsort and median: Thrust, which takes no bfloat16.
# linalg.solve (cupy/linalg/_solve.py): a b of two or more dimensions needs a's batch axes exactly (no
# broadcasting: ValueError). interp (cupy/_math/misc.py): x must be a C-contiguous array, and left/right are cast to
# fp's dtype (NumPy computes in float64). var and std (cupy/_core/_routines_statistics.pyx, _var): bfloat16 comes
# back float64.
def _first(args, kwargs, name):
    return args[0] if args else kwargs.get(name)


def _is_extension_float(value) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and dtype.name in EXTENSION_FLOATS


def _inexact(value):
    dtype = getattr(value, "dtype", None)
    return dtype is not None and (dtype.kind in "fc" or dtype.name in EXTENSION_FLOATS)


_CUPY_DIFFERS = {
    "quantile": lambda args, kwargs: True,
    "percentile": lambda args, kwargs: True,
    "nan_to_num": lambda args, kwargs: _is_extension_float(_first(args, kwargs, "x")),
    "clip": lambda args, kwargs: _clip_differs(*args, **kwargs),
    "partition": lambda args, kwargs: _inexact(_first(args, kwargs, "a")),
    "argpartition": lambda args, kwargs: _inexact(_first(args, kwargs, "a")),
    "sort": lambda args, kwargs: _is_extension_float(_first(args, kwargs, "a")),
    "argsort": lambda args, kwargs: _is_extension_float(_first(args, kwargs, "a")),
    "median": lambda args, kwargs: _is_extension_float(_first(args, kwargs, "a")),
    "solve": lambda args, kwargs: _unbroadcast_solve(*args, **kwargs),
    "interp": lambda args, kwargs: _narrowing_interp(*args, **kwargs),
    "var": lambda args, kwargs: _bfloat16_variance(args, kwargs),
    "std": lambda args, kwargs: _bfloat16_variance(args, kwargs),
}


def _clip_differs(a=None, a_min=None, a_max=None, **kwargs):
    """CuPy's clip kernel has no complex loop and ignores a NaN bound (NumPy's clip gives NaN): complex values,
    NaN scalars and floating bound arrays (whose values are not read) take gpuad's composition."""
    if getattr(a, "dtype", numpy.dtype(int)).kind == "c":
        return True
    for bound in (a_min, a_max):
        if getattr(bound, "ndim", 0) and getattr(bound, "dtype", numpy.dtype(int)).kind in "fc":
            return True
        if isinstance(bound, (float, numpy.floating)) and numpy.isnan(bound):
            return True
    return False


def _bfloat16_variance(args, kwargs):  # (a, axis, dtype, ...)
    dtype = args[2] if len(args) > 2 else kwargs.get("dtype")
    return _is_extension_float(_first(args, kwargs, "a")) and dtype is None


def _narrowing_interp(x=None, xp=None, fp=None, left=None, right=None, period=None):
    if not getattr(getattr(x, "flags", None), "c_contiguous", False):
        return True
    wide = getattr(fp, "dtype", None) in (numpy.dtype(numpy.float64), numpy.dtype(numpy.complex128))
    return (left is not None or right is not None) and not wide


def _unbroadcast_solve(a=None, b=None):
    a_shape, b_shape = numpy.shape(a), numpy.shape(b)
    return len(b_shape) > 1 and a_shape[:-1] != b_shape[:-1]


def matches_numpy(module, name, args=(), kwargs=None) -> bool:
    """Whether ``module``'s own function ``name`` computes NumPy's result for these arguments. Where it does not
    (CuPy's quantile, ...; bfloat16 sorts on every backend, see ``_sortable``), gpuad.numpy runs its own
    composition on ``module``'s arrays (``_dispatch.traceable``)."""
    if name in _SORTS and _is_extension_float(_first(args, kwargs or {}, "a")):
        return False
    test = _CUPY_DIFFERS.get(name)
    return module is numpy or test is None or not test(args, kwargs or {})


_SORTS = frozenset({"sort", "argsort", "partition", "argpartition", "median"})


def on_host(module) -> bool:
    """Whether ``module``'s arrays live in host memory, so reading a value (for a check that only raises a
    clearer error) costs no device-to-host transfer. Traced code never reads device values to choose a path."""
    return module is numpy


def is_host_array(value) -> bool:
    """Whether ``value`` is a NumPy array (host memory, computed op by op): what the fused regions' CPU cost
    model asks (``fusion.regions.keeps_value``)."""
    return type(value) is numpy.ndarray


def is_private_buffer(value, module) -> bool:
    """True for a writable array that owns its memory (no view): the backward pass may then add into it."""
    return type(value) is module.ndarray and value.base is None


def float_zeros_like(value, shape=None):
    """Zeros of ``value``'s shape (or ``shape``) in its dtype when that is floating point, else float64 (a Python
    scalar gives a 0-d array): the derivative of, or with respect to, a value that nothing depends on."""
    module = array_module(value)
    dtype = getattr(value, "dtype", None)
    return module.zeros(getattr(value, "shape", ()) if shape is None else shape,
                        dtype=dtype if dtype is not None and (dtype.kind in "fc" or dtype.name in EXTENSION_FLOATS)
                        else module.float64)


# core.EXTENSION_FLOATS, repeated here: the backend imports nothing of gpuad (tests/test_layers.py)
EXTENSION_FLOATS = frozenset({"bfloat16"})


_UFUNC_AT = {"add": numpy.add, "max": numpy.maximum, "min": numpy.minimum}

# The dtypes CuPy 14's scatter kernels take (cupy/_core/_routines_indexing.pyx); others are widened here.
_CUPY_SCATTER_TYPES = {"add": frozenset("int32 int64 uint32 uint64 float16 float32 float64".split()),
                       "max": frozenset("int32 int64 uint32 uint64".split())}  # (max/min of floats: below)
_CUPY_SCATTER_TYPES["min"] = _CUPY_SCATTER_TYPES["max"]
_WIDER_INTEGER = {"b": "int32", "i": "int64", "u": "uint64"}


def _scatter(how, target, index, values):
    """``target[index] = how(target[index], values)`` in place, every occurrence of a repeated index taking part:
    NumPy's unbuffered ``ufunc.at`` on every backend. CuPy's ``cupyx.scatter_*`` atomics cover fewer dtypes and
    its float max/min go through single precision and skip NaN, so on CuPy: complex values scatter by parts
    (max/min lexicographically, as NumPy orders them), float max/min scatter order-preserving integer keys of
    the floats (NaN propagated apart), and narrow or extension types are widened and cast back."""
    module = array_module(target)
    if module is numpy:
        _UFUNC_AT[how].at(target, index, values)
        return target
    cupyx = _cupyx(module)
    values = module.asarray(values).astype(target.dtype, copy=False)
    dtype = target.dtype
    if dtype.name in _CUPY_SCATTER_TYPES[how]:
        getattr(cupyx, "scatter_" + how)(target, index, values)
    elif how != "add" and dtype.kind in "fcV":
        target[...] = _scatter_extreme(module, cupyx, how, target, index, values)
    elif dtype.kind == "c":
        parts = [target.real.copy(), target.imag.copy()]
        _scatter(how, parts[0], index, values.real)
        _scatter(how, parts[1], index, values.imag)
        target[...] = parts[0] + 1j * parts[1]
    else:  # bfloat16, bool, int8/16, uint8/16: a wider type, then cast back (bool: nonzero is True)
        wide = target.astype("float32" if dtype.kind in "fV" else _WIDER_INTEGER[dtype.kind])
        _scatter(how, wide, index, values.astype(wide.dtype))
        target[...] = wide.astype(dtype) if dtype.kind != "b" else wide != 0
    return target


def _order_keys(module, x):
    """Integers in the order of the floats ``x`` (float32 -> int32, float64 -> int64): -inf < ... < -0 < +0 <
    ... < inf; an integer atomic max/min of the keys is the float max/min, exactly."""
    ints = module.ascontiguousarray(x).view(module.int32 if x.dtype.itemsize == 4 else module.int64)
    return module.where(ints < 0, ints ^ numpy.iinfo(ints.dtype).max, ints)


def _from_order_keys(module, keys, dtype):
    return module.where(keys < 0, keys ^ numpy.iinfo(keys.dtype).max, keys).view(dtype)


def _scatter_extreme(module, cupyx, how, target, index, values):
    """The max/min scatter of floats or complex values (NumPy's order: complex lexicographic, NaN wins)."""
    scatter = getattr(cupyx, "scatter_" + how)
    selected = module.broadcast_to(module.zeros((), dtype=module.bool_), target.shape)[index].shape
    values = module.broadcast_to(values, selected)
    if target.dtype.kind == "c":
        parts = [(p(target), p(values)) for p in (module.real, module.imag)]
    else:
        parts = [(target, values)]
    work = module.float64 if parts[0][0].dtype.itemsize == 8 else module.float32  # (half types: exact in float32)
    keyed = [(_order_keys(module, t.astype(work)), _order_keys(module, v.astype(work))) for t, v in parts]
    best, offered = keyed[0][0].copy(), keyed[0][1]  # (the target's own keys are compared with it below)
    scatter(best, index, offered)
    results = [_from_order_keys(module, best, work)]
    if len(keyed) == 2:  # the imaginary part decides among the operands whose real part won
        lose = numpy.iinfo(best.dtype).min if how == "max" else numpy.iinfo(best.dtype).max
        target_imag, values_imag = keyed[1]
        won = best[index]
        imag = module.where(keyed[0][0] == best, target_imag, lose)
        scatter(imag, index, module.where(offered == won, values_imag, lose))
        results.append(_from_order_keys(module, imag, work))
    result = results[0] if len(results) == 1 else results[0] + 1j * results[1]
    nan = module.isnan(target).astype(module.int32)  # NaN wins, as in NumPy's maximum and minimum
    cupyx.scatter_max(nan, index, module.isnan(values).astype(module.int32))
    return module.where(nan > 0, module.nan, result).astype(target.dtype)


def scatter_add(target, index, values):
    """``target[index] += values`` with repeated indices accumulating, in place."""
    return _scatter("add", target, index, values)


def scatter_max(target, index, values):
    """``target[index] = maximum(target[index], values)`` with repeated indices all taking part, in place (the
    deterministic way to let one of several writes to the same element win)."""
    return _scatter("max", target, index, values)


def scatter_min(target, index, values):
    """``target[index] = minimum(target[index], values)`` with repeated indices all taking part, in place."""
    return _scatter("min", target, index, values)


# ---- where CuPy's kernels take fewer dtypes or order differently than NumPy's --------------------------------

def where(condition, x, y):
    """``numpy.where(condition, x, y)`` on the operands' backend, in NumPy's result dtype. CuPy's where kernel has
    no bfloat16 loop (cupy/_sorting/search.py, ``_where_ufunc``: bfloat16 operands come back as float32, where
    NumPy gives bfloat16, or float64 beside a Python float): on CuPy, a bfloat16 result selects the values'
    bfloat16 bit patterns (as uint16), exactly, and a wider one selects the operands cast to it."""
    module = array_module(condition, x, y)
    if module is numpy or not (_is_extension_float(x) or _is_extension_float(y)):
        return module.where(condition, x, y)
    dtype = numpy.result_type(*(v.dtype if hasattr(v, "dtype") else v for v in (x, y)))
    if dtype.name not in EXTENSION_FLOATS:
        return module.where(condition, *(v.astype(dtype) if type(v) is module.ndarray else v for v in (x, y)))

    def bits(v):
        if type(v) is module.ndarray:
            return v.astype(dtype, copy=False).view(module.uint16)
        return numpy.asarray(v, dtype=dtype).view(numpy.uint16)[()]  # a host scalar: its bits, no transfer
    return module.where(condition, bits(x), bits(y)).view(dtype)


class _Namespace:
    """A CuPy-like module as the rule rows' expressions use it (``namespace``): its own functions, but ``where``
    in NumPy's dtypes (see ``where``) and ``clip`` as NumPy defines it."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        value = getattr(self._module, name)
        setattr(self, name, value)
        return value

    def where(self, condition, x, y):
        return where(condition, x, y)

    def clip(self, x, lower, upper):
        # NumPy's definition: CuPy's clip kernel (cupy/_core/_routines_math.pyx, _clip) has no complex loop and
        # ignores a NaN bound, its maximum and minimum propagate NaN as NumPy's clip does
        return self._module.minimum(self._module.maximum(x, lower), upper)


_namespaces: dict[int, object] = {}


def namespace(module):
    """What the rule rows' expressions (``gpuad.expr``) evaluate with on ``module``'s arrays: NumPy itself; for
    CuPy, CuPy with ``where`` keeping NumPy's dtypes."""
    if module is numpy:
        return numpy
    found = _namespaces.get(id(module))
    if found is None or found._module is not module:
        found = _namespaces[id(module)] = _Namespace(module)
    return found


# bfloat16 is sorted as float32 (exact, the same order) on every backend: NumPy's sorts compare ml_dtypes'
# bfloat16 with NaN unordered (a NaN lands anywhere, not last), and CuPy's run Thrust, which takes no bfloat16
# (cupy/cuda/thrust.pyx, cupy/cuda/common.pyx _get_dtype_id: NotImplementedError).
def _sortable(module, values):
    return values.astype(module.float32) if _is_extension_float(values) else values


def sort(a, axis=-1):
    """``a`` sorted along ``axis``, in NumPy's order (NaN last, complex a lexicographically)."""
    module = array_module(a)
    wide = _sortable(module, a)
    result = module.sort(wide, axis=axis)
    return result if wide is a else result.astype(a.dtype)


def argsort(a, axis=-1, **options):
    """The permutation that sorts ``a`` along ``axis`` (NumPy's order; ``options``: what the backend's argsort
    takes, kind=/stable=)."""
    module = array_module(a)
    return module.argsort(_sortable(module, a), axis=axis, **options)


def argpartition(a, kth, axis=-1, **options):
    """Indices that partition ``a`` around ``kth`` along ``axis``, NaN last, as NumPy's. CuPy's argpartition
    runs a selection kernel on a long axis whose comparisons (< and >) leave NaN where it falls, and Thrust's
    argsort (no bfloat16) on a short one (cupy/_core/_routines_sorting.pyx, _ndarray_argpartition): on CuPy, real
    floating a are selected by their order-preserving integer keys (NaN the largest), complex a
    argsorted (Thrust orders NaN as NumPy does)."""
    module = array_module(a)
    # (CuPy's takes kth as a Python int or a sequence of them: `isinstance(kth, int)`, then `for k in kth`)
    kth = operator.index(kth) if numpy.ndim(kth) == 0 else [operator.index(k) for k in kth]
    if module is numpy or a.dtype.kind not in "fcV":
        return module.argpartition(_sortable(module, a), kth, axis=axis, **options)
    if a.dtype.kind == "c":
        return module.argsort(a, axis=axis)  # (a full sort is a partition too)
    wide = a if a.dtype.itemsize >= 4 else a.astype(module.float32)  # (float16, bfloat16: exact)
    keys = _order_keys(module, wide)
    keys = module.where(module.isnan(wide), numpy.iinfo(keys.dtype).max, keys)
    return module.argpartition(keys, kth, axis=axis, **options)


# ---- the explicit hook for a stand-in CuPy (the test suite's emulated CuPy) ---------------------------------

_registered: dict[type, object] = {}  # array type -> the module that owns its arrays
_cupyx_of: dict[int, object] = {}  # id(module) -> its cupyx (scatter_add, scatter_max)


def register_cupy_like(array_type, module, cupyx_module):
    """Make ``module`` the backend of arrays of ``array_type`` (and its subclasses), taking CuPy's code paths:
    ``module`` stands in for ``cupy`` and ``cupyx_module`` for ``cupyx``. The test suite registers its emulated
    CuPy this way (NumPy-held arrays, CuPy's signatures) so that gpuad's CuPy path runs without a GPU. Returns a
    function that undoes the registration."""
    _registered[array_type] = module
    _cupyx_of[id(module)] = cupyx_module
    _module_by_type.clear()
    _module_by_type.update(_BUILTIN_TYPES)

    def undo():
        _registered.pop(array_type, None)
        _cupyx_of.pop(id(module), None)
        _module_by_type.clear()
        _module_by_type.update(_BUILTIN_TYPES)
    return undo


def _cupyx(module):
    found = _cupyx_of.get(id(module))
    if found is not None:
        return found
    import cupyx
    return cupyx


def to_numpy(value):
    """A NumPy copy (or view) of a NumPy or CuPy array, for printing and testing."""
    if array_module(value) is numpy:
        return numpy.asarray(value)
    return value.get()


_default = None


def set_default_module(module):
    """Choose the module for functions with no array argument (overriding ``GPUAD_BACKEND``); None restores the
    automatic choice. Returns the previous choice (None when it was automatic)."""
    global _default
    previous, _default = _default, module
    return previous


def default_module():
    """The module for functions with no array argument (zeros, arange, ...).

    ``GPUAD_BACKEND=cupy|numpy`` chooses; without it, CuPy when it imports and sees a GPU, else NumPy.
    """
    global _default
    if _default is not None:
        return _default
    choice = os.environ.get("GPUAD_BACKEND", "").strip().lower()
    if choice not in ("", "numpy", "cupy"):
        raise ValueError(f"GPUAD_BACKEND={choice!r} is not a backend; use 'numpy' or 'cupy'")
    if choice == "numpy":
        _default = numpy
    elif choice == "cupy":
        _default = require_cupy("GPUAD_BACKEND=cupy")
    else:
        try:
            import cupy
            _default = cupy if cupy.cuda.runtime.getDeviceCount() > 0 else numpy
        except Exception:  # no CuPy, no driver, or no GPU: the CPU backend
            _default = numpy
    return _default


def require_cupy(reason: str):
    """Import CuPy for ``reason`` or raise a clear error saying how to get it."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no GPU visible")
    except Exception as e:
        raise RuntimeError(
            f"{reason} needs CuPy and an NVIDIA GPU, but {type(e).__name__}: {e}. Install the extra "
            f"(pip install 'gpuad[cuda12]' or 'gpuad[cuda13]') on a machine with a GPU, or use "
            f"GPUAD_BACKEND=numpy") from None
    return cupy
