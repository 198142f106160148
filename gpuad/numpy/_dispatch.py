"""The shared plumbing of ``gpuad.numpy``: dispatch between traced and plain arguments, and axis arguments.

``traceable`` wraps a traced implementation so that calls without a gpuad Tensor go to the backend module's
(NumPy's or CuPy's) function of the same name; ``has_tensor`` and ``module_of`` are the tests it makes.
``normalize_axes`` is the one reading of NumPy's ``axis`` arguments (None, one axis, or a sequence) into
non-negative axes, with NumPy's ``AxisError`` and repeated-axis errors. ``no_out`` rejects the in-place
arguments (``out=``, ``where=``, ...) that traced values cannot take. Every family module builds on these.
"""
from __future__ import annotations

import functools
import operator

import numpy as _np

from .. import backend
from ..core import raw, Tensor


def has_tensor(values):
    """Whether ``values`` (or a list or tuple among them) holds a gpuad Tensor."""
    for v in values:
        if isinstance(v, Tensor):
            return True
        if type(v) in (list, tuple) and has_tensor(v):
            return True
    return False


def module_of(values):
    """The backend module (numpy or cupy) of ``values``, looking one level into lists and tuples."""
    flat = []
    for v in values:
        if type(v) in (list, tuple):
            flat.extend(raw(x) for x in v)
        else:
            flat.append(raw(v))
    return backend.array_module(*flat)


def is_backend_array(value):
    """Whether ``value`` is an array of some backend (or a NumPy scalar), as opposed to Python data."""
    return hasattr(value, "__array_priority__") or hasattr(value, "dtype")


def traceable(fn, submodule=None):
    """Run ``fn`` (the traced implementation) when an argument is a gpuad Tensor; otherwise call the backend
    module's function of the same name (in its ``submodule``, e.g. "linalg", when given), so plain arrays get
    NumPy's (or CuPy's) exact behaviour.

    Where the backend lacks the function (CuPy has no ``linalg.vector_norm``, ``linalg.svdvals``, ...) or does
    not take these arguments (``linalg.cholesky(upper=)``, ...), ``fn`` itself runs on the plain arrays: gpuad's
    own composition, whose primitives evaluate on the backend's arrays. This is the one place that decides it."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if has_tensor(args) or has_tensor(kwargs.values()):
            return fn(*args, **kwargs)
        module = module_of((*args, *kwargs.values()))
        target = getattr(getattr(module, submodule, None) if submodule else module, name, None)
        if target is None or not backend.accepts(target, args, kwargs):
            return fn(*args, **kwargs)
        return target(*args, **kwargs)

    return wrapper


def supported_options(function, **options):
    """The ``options`` (keywords that only choose an algorithm, such as sort's ``stable`` or partition's
    ``kind``) that the backend ``function`` takes; the others are dropped (CuPy's sort is always stable)."""
    return {k: v for k, v in options.items() if backend.accepts(function, (), (k,))}


def no_out(name, **unsupported):
    """Reject in-place arguments (out=, where=, initial=, ...) given a value: gpuad is out-of-place."""
    for key, value in unsupported.items():
        if value is not None and value is not False:
            raise TypeError(f"gpuad.numpy.{name}: {key}= is not supported on traced values (gpuad is "
                            f"out-of-place); use the returned array instead")


def normalize_axes(axis, ndim, argname=None, *, allow_repeated=False, sort=False):
    """NumPy's axis argument (None for all axes, one axis, or a sequence) as a tuple of non-negative axes.

    Out-of-range axes raise NumPy's ``AxisError`` (naming ``argname`` when given), and a repeated axis raises
    NumPy's ``ValueError`` unless ``allow_repeated``. The axes keep the order given, or come sorted with ``sort``.
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) or hasattr(axis, "__index__") else tuple(axis)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise _np.exceptions.AxisError(a, ndim, argname)
        out.append(a % ndim)
    if not allow_repeated and len(set(out)) != len(out):
        raise ValueError(f"repeated axis in `{argname}` argument" if argname else "repeated axis")
    return tuple(sorted(out)) if sort else tuple(out)
