"""The shared plumbing of ``gpuad.numpy``: dispatch between traced and plain arguments, and axis arguments.

``traceable`` wraps a traced implementation so that calls without a gpuad Tensor go to the backend module's
(NumPy's or CuPy's) function of the same name; ``has_tensor`` and ``module_of`` are the tests it makes. On the
traced path it reads lists and tuples given for array parameters as NumPy does (``array_from``: the one reading
of array_like arguments, which the elementwise functions and the operators share).
``normalize_axes`` is the one reading of NumPy's ``axis`` arguments (None, one axis, or a sequence) into
non-negative axes, with NumPy's ``AxisError`` and repeated-axis errors. ``no_out`` rejects the in-place
arguments (``out=``, ``where=``, ...) that traced values cannot take. Every family module builds on these.
"""
from __future__ import annotations

import functools
import inspect
import operator

import numpy as _np

from .. import backend
from ..core import aval, raw, Tensor
from ..ops.linear import CONCATENATE, CONVERT, RESHAPE


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


# ---- array_like arguments ------------------------------------------------------------------------------------

def is_nested(value):
    """Whether ``value`` is Python's spelling of an array: a list or tuple (possibly nested)."""
    return type(value) in (list, tuple)


def plain_values(value):
    """``value`` with every gpuad Tensor (at any depth of lists and tuples) replaced by the value under it."""
    if isinstance(value, Tensor):
        return raw(value)
    if is_nested(value):
        return [plain_values(v) for v in value]
    return value


def _leaves(value, out):
    if is_nested(value):
        for v in value:
            _leaves(v, out)
    else:
        out.append(raw(value))
    return out


def array_from(value):
    """An array_like argument read as NumPy reads it. A list or tuple (nested, holding numbers, arrays or traced
    values) becomes one array: without traced values the backend's own ``asarray``; with them, the same array
    (NumPy's shape, its dtype, its error for ragged lists) assembled differentiably from its parts (reshape,
    convert and concatenate rows), with nothing of its size computed twice. Anything else (a Tensor, an array,
    a scalar) is returned as it is."""
    if not is_nested(value):
        return value
    module = backend.array_module(*_leaves(value, []))
    if not has_tensor(value):
        return module.asarray(value)
    _nested_shape(value, 0)
    # the dtype NumPy would give: its discovery does not depend on the nesting, so a flat list of 0-d stand-ins
    dtype = _np.asarray([_dtype_probe(v) for v in _leaves(value, [])]).dtype
    return _assemble(value, dtype, module)


def _nested_shape(value, depth):
    """The shape NumPy gives a nested list, or NumPy's error for an inhomogeneous one."""
    if not is_nested(value):
        shape = aval(value)[0] if isinstance(value, Tensor) or hasattr(value, "shape") else _np.shape(value)
        return tuple(shape)
    shapes = {_nested_shape(v, depth + 1) for v in value}
    if len(shapes) > 1:
        raise ValueError(f"setting an array element with a sequence. The requested array has an inhomogeneous "
                         f"shape after {depth + 1} dimensions: the elements of one list have the shapes "
                         f"{sorted(shapes, key=len)}")
    return (len(value),) + (shapes.pop() if shapes else ())


def _dtype_probe(value):
    dtype = aval(value)[1]
    return value if dtype is None else _np.zeros((), dtype)


def _assemble(value, dtype, module):
    if isinstance(value, Tensor):
        return value if aval(value)[1] == dtype else CONVERT.bind(value, dtype=dtype)
    if not has_tensor((value,)):
        return module.asarray(plain_values(value), dtype=dtype)
    parts = [_assemble(v, dtype, module) for v in value]
    return CONCATENATE.bind(*[RESHAPE.bind(p, shape=(1,) + aval(p)[0]) for p in parts], axis=0)


# The parameters of gpuad.numpy's functions that NumPy reads as array_like: only these are converted (axis tuples,
# shapes, indices_or_sections, reps, pad_width, subscripts, ... keep their meaning). One array each, a sequence of
# arrays each (concatenate's ``arrays``, vstack's ``tup``, ...), or one array per extra positional argument.
ARRAY_PARAMETERS = frozenset({"a", "b", "x", "x1", "x2", "v", "m", "A", "ary", "arr", "array", "values",
                              "weights", "prepend", "append", "fill_value"})
ARRAY_SEQUENCES = frozenset({"arrays", "tup", "choicelist"})
ARRAY_VARARGS = frozenset({"arys", "args", "xi"})


def _array_parameters(fn, arrays, sequences):
    """(positional index, is a sequence) and (keyword name -> is a sequence) of ``fn``'s array parameters, and
    the index its array varargs start at (None without)."""
    positional, keywords, varargs = [], {}, None
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if p.kind is p.VAR_POSITIONAL:
            if p.name in ARRAY_VARARGS:
                varargs = i
            break
        if p.kind is p.VAR_KEYWORD:
            continue
        sequence = p.name in (ARRAY_SEQUENCES if sequences is None else sequences)
        if sequence or p.name in (ARRAY_PARAMETERS if arrays is None else arrays):
            if p.kind is not p.KEYWORD_ONLY:
                positional.append((i, sequence))
            if p.kind is not p.POSITIONAL_ONLY:
                keywords[p.name] = sequence
    return tuple(positional), keywords, varargs


def _as_arrays(value, sequence):
    if not sequence:
        return array_from(value)
    return [array_from(v) for v in value] if is_nested(value) else value


def convert_array_likes(args, kwargs, spec):
    """``args`` and ``kwargs`` with every list or tuple given for an array parameter (``spec``, from
    ``_array_parameters``) turned into an array by ``array_from``."""
    positional, keywords, varargs = spec
    new_args = None
    for i, sequence in positional:
        if i < len(args) and is_nested(args[i]):
            new_args = new_args or list(args)
            new_args[i] = _as_arrays(args[i], sequence)
    if varargs is not None:
        for i in range(varargs, len(args)):
            if is_nested(args[i]):
                new_args = new_args or list(args)
                new_args[i] = array_from(args[i])
    if new_args is not None:
        args = tuple(new_args)
    if kwargs and any(is_nested(v) for k, v in kwargs.items() if k in keywords):
        kwargs = {k: _as_arrays(v, keywords[k]) if k in keywords and is_nested(v) else v
                  for k, v in kwargs.items()}
    return args, kwargs


def traceable(fn, submodule=None, arrays=None, sequences=None, result=None):
    """Run ``fn`` (the traced implementation) when an argument is a gpuad Tensor; otherwise call the backend
    module's function of the same name (in its ``submodule``, e.g. "linalg", when given), so plain arrays get
    NumPy's (or CuPy's) exact behaviour.

    On the traced path, a list or tuple given for one of ``fn``'s array parameters reaches ``fn`` as one array,
    as NumPy reads it (``array_from``): ``dot(x, [[1.], [2.]])``, ``mean([x, 3 * x], axis=0)``. The array
    parameters are those named in ``ARRAY_PARAMETERS`` (one array), ``ARRAY_SEQUENCES`` (a sequence of arrays)
    and ``ARRAY_VARARGS`` (``*arys``); a function whose array parameters have other names passes their names
    as ``arrays`` (one array each) and ``sequences`` (a sequence of arrays each).

    Where the backend lacks the function (CuPy has no ``linalg.vector_norm``, ``linalg.svdvals``, ...), does
    not take these arguments (``linalg.cholesky(upper=)``, ...) or computes something else than NumPy's
    (``backend.matches_numpy``: CuPy's quantile), ``fn`` itself runs on the plain arrays: gpuad's own
    composition, whose primitives evaluate on the backend's arrays. This is the one place that decides it.

    ``result`` (when given) shapes what the backend's own function returns as ``fn`` returns it, called with that
    and the arguments: CuPy's decompositions return plain tuples where ``fn`` (and NumPy) return named ones."""
    name = fn.__name__
    spec = _array_parameters(fn, arrays, sequences)
    index_at = next((i for i, p in enumerate(inspect.signature(fn).parameters) if p == "indices"), None)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if has_tensor(args) or has_tensor(kwargs.values()):
            args, kwargs = convert_array_likes(args, kwargs, spec)
            return fn(*args, **kwargs)
        if index_at is not None:  # NumPy index arrays go with CuPy data (as CuPy's take takes them)
            args, kwargs = _indices_with_data(args, kwargs, index_at)
        module = module_of((*args, *kwargs.values()))
        target = getattr(getattr(module, submodule, None) if submodule else module, name, None)
        if (target is None or not backend.accepts(target, args, kwargs)
                or not backend.matches_numpy(module, name, args, kwargs)):
            args, kwargs = convert_array_likes(args, kwargs, spec)
            return fn(*args, **kwargs)
        out = target(*args, **kwargs)
        return out if result is None else result(out, *args, **kwargs)

    return wrapper


def _indices_with_data(args, kwargs, at):
    """(args, kwargs) with an ``indices`` array of another backend moved to the other arguments' backend."""
    indices = args[at] if len(args) > at else kwargs.get("indices")
    if not (is_backend_array(indices) and getattr(indices, "dtype", None) is not None and indices.dtype.kind in "iu"):
        return args, kwargs
    module = module_of([a for k, a in enumerate(args) if k != at]
                       + [v for key, v in kwargs.items() if key != "indices"])
    if isinstance(indices, module.ndarray):
        return args, kwargs
    if len(args) > at:
        return args[:at] + (module.asarray(indices),) + args[at + 1:], kwargs
    return args, {**kwargs, "indices": module.asarray(indices)}


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
