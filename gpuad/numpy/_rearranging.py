"""gpuad.numpy's rearranging functions: split, join, tile, repeat, flip, roll, rotate, pad, diff, sort, take, select.

Every function here is composed from the basic shape functions of ``_shapes`` and the getitem and scatter_add
rows (through indexing), so its derivatives of every order come from theirs: a split's pieces are
slices, ``sort`` and ``partition`` are a ``take_along_axis`` with the permutation NumPy's ``argsort`` /
``argpartition`` pick (the gradient follows the permutation), ``pad`` in the edge/reflect/symmetric/wrap modes
is an index gather whose indices NumPy's own ``pad`` computes on ``arange``, and in the statistic and
linear_ramp modes a concatenation of max/min/mean/median or linspace pieces. Index arrays are integer
bookkeeping: they are made with NumPy and moved onto the array's backend. As everywhere in ``gpuad.numpy``,
called on plain arrays these functions are NumPy's (or CuPy's) own.
"""
from __future__ import annotations

import builtins
import itertools
import math
import operator

import numpy as _np

from .. import backend
from ..core import aval, constant, is_batched, map_values, raw, Tensor
from ..ops.linear import SCATTER_ADD, SUM
from . import _nondifferentiable
from ._creation import asarray, asarray_like
from ._dispatch import has_tensor, is_backend_array, no_out, normalize_axes, supported_options, traceable
from ._elementwise import where
from ._indexing import exactly, finite_part, getitem, one_hot, wrapped
from ._shapes import astype, broadcast_to, concatenate, expand_dims, moveaxis, ravel, reshape, transpose

__all__ = [
    "atleast_1d", "atleast_2d", "atleast_3d", "split", "array_split", "hsplit", "vsplit", "dsplit", "vstack",
    "hstack", "dstack", "column_stack", "row_stack", "rollaxis", "append", "tile", "repeat", "flip", "fliplr", "flipud",
    "roll", "rot90", "pad", "diff", "sort", "partition", "take", "take_along_axis", "select",
]

# ---- helpers ------------------------------------------------------------------------------------------------

def _shape(a):
    return aval(a)[0]


def _ndim(a):
    return len(aval(a)[0])


def _xp(a):
    return backend.array_module(raw(a))


def _along(axis, index):
    """An index tuple applying ``index`` along ``axis`` and taking everything on the axes before it."""
    return (slice(None),) * axis + (index,)


def _host_ints(value):
    """Integer bookkeeping (repeat counts) as a NumPy array, with NumPy's 'safe' casting error."""
    value = _np.asarray(backend.to_numpy(raw(value)))
    return value if value.dtype.kind in "iu" else value.astype(_np.intp, casting="safe")


def _index_array(a, value):
    """``value`` (a list, a NumPy or backend array, a Tensor) as an index array on ``a``'s backend."""
    return _xp(a).asarray(raw(value))


def _tuple_result(results):
    return results[0] if len(results) == 1 else tuple(results)


# ---- at least n dimensions ----------------------------------------------------------------------------------

def _at_least(arrays, ndim):
    out = []
    for a in arrays:
        a = asarray(a)
        shape = _shape(a)
        if len(shape) < ndim:
            if ndim == 3 and len(shape) == 2:
                shape = shape + (1,)
            elif ndim == 3 and len(shape) == 1:
                shape = (1,) + shape + (1,)
            else:
                shape = (1,) * (ndim - len(shape)) + shape
            a = reshape(a, shape)
        out.append(a)
    return _tuple_result(out)


@traceable
def atleast_1d(*arys):
    return _at_least(arys, 1)


@traceable
def atleast_2d(*arys):
    return _at_least(arys, 2)


@traceable
def atleast_3d(*arys):
    """Like NumPy: (N,) becomes (1, N, 1) and (M, N) becomes (M, N, 1)."""
    return _at_least(arys, 3)


# ---- splitting ----------------------------------------------------------------------------------------------

@traceable
def array_split(ary, indices_or_sections, axis=0):
    ary = asarray(ary)
    axis = normalize_axes(axis, _ndim(ary))[0]
    total = _shape(ary)[axis]
    try:
        bounds = [0, *indices_or_sections, total]
    except TypeError:
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.") from None
        each, extra = divmod(total, sections)
        sizes = [each + 1] * extra + [each] * (sections - extra)
        bounds = [0, *itertools.accumulate(sizes)]
    return [ary[_along(axis, slice(start, stop))] for start, stop in zip(bounds[:-1], bounds[1:])]


@traceable
def split(ary, indices_or_sections, axis=0):
    try:
        len(indices_or_sections)
    except TypeError:
        ary = asarray(ary)
        if _shape(ary)[normalize_axes(axis, _ndim(ary))[0]] % indices_or_sections:
            raise ValueError("array split does not result in an equal division") from None
    return array_split(ary, indices_or_sections, axis)


@traceable
def hsplit(ary, indices_or_sections):
    if _ndim(ary) == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return split(ary, indices_or_sections, 1 if _ndim(ary) > 1 else 0)


@traceable
def vsplit(ary, indices_or_sections):
    if _ndim(ary) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, 0)


@traceable
def dsplit(ary, indices_or_sections):
    if _ndim(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, 2)


# ---- joining ------------------------------------------------------------------------------------------------

def _as_list(arrays):
    return list(arrays) if isinstance(arrays, tuple) else [arrays]


def _join(arrays, axis, dtype, casting):
    if dtype is not None:
        for a in arrays:
            if not _np.can_cast(aval(a)[1] or _np.asarray(raw(a)).dtype, dtype, casting):
                raise TypeError(f"Cannot cast array data from {aval(a)[1]!r} to {_np.dtype(dtype)!r} according "
                                f"to the rule {casting!r}")
    return concatenate(arrays, axis, dtype=dtype)


@traceable
def vstack(tup, *, dtype=None, casting="same_kind"):
    return _join(_as_list(atleast_2d(*tup)), 0, dtype, casting)


def row_stack(tup, *, dtype=None, casting="same_kind"):
    """numpy.row_stack, deprecated in NumPy 2 in favour of vstack: here an alias of vstack, without the warning
    (plain arrays too)."""
    return vstack(tup, dtype=dtype, casting=casting)


@traceable
def hstack(tup, *, dtype=None, casting="same_kind"):
    arrays = _as_list(atleast_1d(*tup))
    return _join(arrays, 0 if arrays and _ndim(arrays[0]) == 1 else 1, dtype, casting)


@traceable
def dstack(tup):
    return concatenate(_as_list(atleast_3d(*tup)), 2)


@traceable
def column_stack(tup):
    columns = []
    for a in tup:
        a = asarray(a)
        if _ndim(a) < 2:
            a = reshape(a, (-1, 1))
        columns.append(a)
    return concatenate(columns, 1)


@traceable
def append(arr, values, axis=None):
    arr = asarray(arr)
    if axis is None:
        arr, values, axis = ravel(arr), ravel(values), 0
    return concatenate((arr, values), axis)


# ---- repeating ----------------------------------------------------------------------------------------------

@traceable
def tile(A, reps):
    """Composed as reshape -> broadcast_to -> reshape, so the gradient is a sum over the copies."""
    try:
        reps = tuple(operator.index(r) for r in reps)
    except TypeError:
        reps = (operator.index(reps),)
    if any(r < 0 for r in reps):
        raise ValueError("negative dimensions are not allowed")
    A = asarray(A)
    shape = _shape(A)
    shape = (1,) * (len(reps) - len(shape)) + shape
    reps = (1,) * (len(shape) - len(reps)) + reps
    if all(r == 1 for r in reps):
        return reshape(A, shape)
    interleaved = tuple(n for s in shape for n in (1, s))
    copies = tuple(n for r, s in zip(reps, shape) for n in (r, s))
    return reshape(broadcast_to(reshape(A, interleaved), copies), tuple(r * s for r, s in zip(reps, shape)))


@traceable
def repeat(a, repeats, axis=None):
    """A single repeat count broadcasts (gradient: a sum over copies); per-element counts gather by index."""
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    shape = _shape(a)
    axis = normalize_axes(axis, len(shape))[0]
    counts = _host_ints(repeats)
    if counts.size == 1:
        count = int(counts.reshape(()))
        if count < 0:
            raise ValueError("negative dimensions are not allowed")
        expanded = reshape(a, shape[:axis + 1] + (1,) + shape[axis + 1:])
        copies = broadcast_to(expanded, shape[:axis + 1] + (count,) + shape[axis + 1:])
        return reshape(copies, shape[:axis] + (shape[axis] * count,) + shape[axis + 1:])
    if counts.ndim != 1 or counts.shape[0] != shape[axis]:
        raise ValueError(f"operands could not be broadcast together with shape ({shape[axis]},) {counts.shape}")
    if (counts < 0).any():
        raise ValueError("repeats may not contain negative values.")
    index = _np.repeat(_np.arange(shape[axis]), counts)
    return a[_along(axis, _index_array(a, index))]


# ---- reordering ---------------------------------------------------------------------------------------------

@traceable
def flip(m, axis=None):
    ndim = _ndim(m)
    axes = range(ndim) if axis is None else normalize_axes(axis, ndim)
    return m[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(ndim))]


@traceable
def fliplr(m):
    if _ndim(m) < 2:
        raise ValueError("Input must be >= 2-d.")
    return m[:, ::-1]


@traceable
def flipud(m):
    if _ndim(m) < 1:
        raise ValueError("Input must be >= 1-d.")
    return m[::-1, ...]


@traceable
def roll(a, shift, axis=None):
    """Each rolled axis is two slices concatenated in swapped order (no index gather)."""
    a = asarray(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), _shape(a))
    shape = _shape(a)
    axes = normalize_axes(axis, len(shape), allow_repeated=True)
    pairs = _np.broadcast(_np.asarray(shift), _np.asarray(axes))
    if pairs.ndim > 1:
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences")
    total = {}
    for s, ax in pairs:
        total[int(ax)] = total.get(int(ax), 0) + int(s)
    for ax, s in total.items():
        if shape[ax] == 0 or s % shape[ax] == 0:
            continue
        s %= shape[ax]
        a = concatenate([a[_along(ax, slice(-s, None))], a[_along(ax, slice(None, -s))]], ax)
    return a


@traceable
def rollaxis(a, axis, start=0):
    """numpy.rollaxis: ``axis`` moved to lie before position ``start`` (NumPy's rules for ``start``)."""
    a = asarray(a)
    n = _ndim(a)
    axis = normalize_axes(axis, n)[0]
    start = operator.index(start)
    if not -n <= start <= n:
        raise _np.exceptions.AxisError(f"'start' arg requires {-n} <= start < {n + 1}, but {start} was passed in")
    if start < 0:
        start += n
    if axis < start:
        start -= 1
    if axis == start:
        return a
    order = list(range(n))
    order.remove(axis)
    order.insert(start, axis)
    return transpose(a, order)


@traceable
def rot90(m, k=1, axes=(0, 1)):
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    m = asarray(m)
    ndim = _ndim(m)
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == ndim:
        raise ValueError("Axes must be different.")
    if not (-ndim <= axes[0] < ndim and -ndim <= axes[1] < ndim):
        raise ValueError(f"Axes={axes} out of range for array of ndim={ndim}.")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    order = list(range(ndim))
    order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
    return transpose(flip(m, axes[1]), order) if k == 1 else flip(transpose(m, order), axes[1])


# ---- padding ------------------------------------------------------------------------------------------------

_INDEX_PAD_MODES = ("edge", "reflect", "symmetric", "wrap")
_STAT_PAD_MODES = ("maximum", "mean", "median", "minimum")
_PAD_KEYWORDS = {"constant": {"constant_values"}, "edge": set(), "reflect": {"reflect_type"},
                 "symmetric": {"reflect_type"}, "wrap": set(), "linear_ramp": {"end_values"},
                 **{m: {"stat_length"} for m in _STAT_PAD_MODES}}
_OTHER_PAD_MODES = ("empty",)


@traceable
def pad(array, pad_width, mode="constant", **kwargs):
    """Every NumPy mode but 'empty' and callables, on traced values (reflect_type='even').

    'constant' places the array into the padded shape (scatter) over a constant background; 'edge', 'reflect',
    'symmetric' and 'wrap' gather along each axis with the indices ``numpy.pad(arange(n), pad, mode)``, so their
    gradients add up every copy of an edge or reflected element; 'maximum', 'minimum', 'mean' and 'median' pad
    with the statistic of the first/last ``stat_length`` elements (differentiable like max, min, mean and median:
    ties share evenly); 'linear_ramp' pads with NumPy's linspace from ``end_values`` to the edge element. Axes are
    padded one after the other, as NumPy does (a statistic along a later axis sees the earlier axes' padding).
    """
    if callable(mode) or mode in _OTHER_PAD_MODES:
        raise NotImplementedError(f"gpuad.numpy.pad: mode {mode!r} is not differentiable here; use one of "
                                  f"{', '.join(map(repr, _PAD_KEYWORDS))}")
    if mode not in _PAD_KEYWORDS:
        raise ValueError(f"mode '{mode}' is not supported")
    unsupported = set(kwargs) - _PAD_KEYWORDS[mode]
    if unsupported:
        raise ValueError(f"unsupported keyword arguments for mode '{mode}': {unsupported}")
    if kwargs.get("reflect_type", "even") != "even":
        raise NotImplementedError("gpuad.numpy.pad: reflect_type='odd' is not supported on traced values; use "
                                  "reflect_type='even' (the default)")
    array = asarray(array)
    shape, dtype = aval(array)
    widths = _np.asarray(pad_width)
    if widths.dtype.kind not in "iu":
        raise TypeError("`pad_width` must be of integral type.")
    widths = _np.broadcast_to(widths, (len(shape), 2))
    if (widths < 0).any():
        raise ValueError("index can't contain negative values")
    if mode == "constant":
        return _pad_constant(array, shape, dtype, widths, kwargs.get("constant_values", 0))
    if mode in _STAT_PAD_MODES:
        return _pad_statistic(array, widths, mode, kwargs.get("stat_length"))
    if mode == "linear_ramp":
        return _pad_linear_ramp(array, widths, kwargs.get("end_values", 0))
    for ax, (before, after) in enumerate(widths.tolist()):
        if before or after:
            index = _np.pad(_np.arange(shape[ax]), (before, after), mode=mode)
            array = array[_along(ax, _index_array(array, index))]
    return array


def _pairs(value, ndim, name):
    """NumPy's per-axis (before, after) pairs of a pad argument (None stays None)."""
    if value is None:
        return [(None, None)] * ndim
    if has_tensor((value,)):
        raise TypeError(f"gpuad.numpy.pad: a traced {name} is not supported (no derivative in it); pass plain "
                        f"numbers")
    host = _np.asarray(backend.to_numpy(raw(value)) if isinstance(value, Tensor) else value, dtype=object)
    if host.ndim == 0 or host.size == 1:
        v = host.reshape(()).item()
        return [(v, v)] * ndim
    if host.ndim == 1 and host.size == 2:
        return [tuple(host.tolist())] * ndim
    try:
        return [tuple(p) for p in _np.broadcast_to(host, (ndim, 2)).tolist()]
    except ValueError:
        raise ValueError(f"operands could not be broadcast: {name} does not fit the array's {ndim} axes") from None


def _pad_statistic(array, widths, mode, stat_length):
    from ._reductions import max as maximum, mean, min as minimum
    from ._statistics import median
    stat = {"maximum": maximum, "minimum": minimum, "mean": mean, "median": median}[mode]
    lengths = _pairs(stat_length, _ndim(array), "stat_length")
    for ax, ((before, after), (left_len, right_len)) in enumerate(zip(widths.tolist(), lengths)):
        if not (before or after):
            continue
        n = _shape(array)[ax]
        left_len = n if left_len is None or left_len > n else int(left_len)
        right_len = n if right_len is None or right_len > n else int(right_len)
        if (left_len < 0) or (right_len < 0):
            raise ValueError("index can't contain negative values")
        if (before and left_len == 0) or (after and right_len == 0):
            raise ValueError("stat_length of 0 yields no value for padding")
        parts = []
        shape = _shape(array)
        if before:
            left = stat(array[_along(ax, slice(0, left_len))], axis=ax, keepdims=True)
            parts.append(broadcast_to(left, shape[:ax] + (before,) + shape[ax + 1:]))
        parts.append(array)
        if after:
            right = stat(array[_along(ax, slice(n - right_len, n))], axis=ax, keepdims=True)
            parts.append(broadcast_to(right, shape[:ax] + (after,) + shape[ax + 1:]))
        array = concatenate(parts, ax)
    return array


def _pad_linear_ramp(array, widths, end_values):
    from ._creation import linspace
    ends = _pairs(end_values, _ndim(array), "end_values")
    dtype = aval(array)[1]
    for ax, ((before, after), (left_end, right_end)) in enumerate(zip(widths.tolist(), ends)):
        if not (before or after):
            continue
        n = _shape(array)[ax]
        parts = []
        if before:
            edge = array[_along(ax, 0)]
            parts.append(linspace(left_end, edge, before, endpoint=False, dtype=dtype, axis=ax))
        parts.append(array)
        if after:
            edge = array[_along(ax, n - 1)]
            ramp = linspace(right_end, edge, after, endpoint=False, dtype=dtype, axis=ax)
            parts.append(ramp[_along(ax, slice(None, None, -1))])
        array = concatenate(parts, ax)
    return array


def _pad_constant(array, shape, dtype, widths, constant_values):
    padded = tuple(n + b + e for n, (b, e) in zip(shape, widths.tolist()))
    inside = tuple(slice(b, b + n) for n, (b, _) in zip(shape, widths.tolist()))
    body = SCATTER_ADD.bind(array, index=inside, shape=padded)
    xp = _xp(array)
    if isinstance(constant_values, Tensor):
        if _shape(constant_values) != ():
            raise NotImplementedError("gpuad.numpy.pad: a traced constant_values must be a scalar; pass a plain "
                                      "array for per-axis constants")
        outside = xp.pad(xp.zeros(shape, dtype=dtype), widths, constant_values=1)
        return body + astype(constant_values, dtype) * outside
    if has_tensor((constant_values,)):
        raise NotImplementedError("gpuad.numpy.pad: traced constant_values must be a single scalar Tensor")
    if not is_backend_array(constant_values) or backend.on_host(backend.array_module(constant_values)):
        if _np.all(_np.asarray(constant_values) == 0):  # read on the host only: no device value decides a path
            return body
    return body + xp.pad(xp.zeros(shape, dtype=dtype), widths, constant_values=constant_values)


# ---- differences --------------------------------------------------------------------------------------------

@traceable
def diff(a, n=1, axis=-1, prepend=_np._NoValue, append=_np._NoValue):
    if n == 0:
        return a
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    a = asarray(a)
    if _ndim(a) == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = normalize_axes(axis, _ndim(a))[0]

    def edge(extra):  # a scalar to prepend or append fills one slice along the axis, like NumPy's
        extra = asarray_like(extra, a)
        if _ndim(extra) == 0:
            extra = broadcast_to(extra, _shape(a)[:axis] + (1,) + _shape(a)[axis + 1:])
        return extra

    parts = [a]
    if prepend is not _np._NoValue:
        parts.insert(0, edge(prepend))
    if append is not _np._NoValue:
        parts.append(edge(append))
    if len(parts) > 1:
        a = concatenate(parts, axis)
    for _ in range(n):
        a = a[_along(axis, slice(1, None))] - a[_along(axis, slice(None, -1))]
    return a


# ---- sorting and selecting ----------------------------------------------------------------------------------

def _ordering_input(name, a, axis, order):
    """(array, axis) for sort and partition: axis=None orders the flattened array; structured order= refused."""
    if order is not None:
        raise NotImplementedError(f"gpuad.numpy.{name}: order= (structured arrays) is not supported on traced values")
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    return a, normalize_axes(axis, _ndim(a))[0]


@traceable
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """The sorted values; the gradient follows the permutation (ties: the one ``argsort`` picks)."""
    a, axis = _ordering_input("sort", a, axis, order)
    options = {k: v for k, v in (("kind", kind), ("stable", stable)) if v is not None}
    options = supported_options(_xp(a).argsort, **options)  # CuPy's takes no stable= (it always sorts stably)
    if is_batched(a):  # (vmap: the permutations differ between examples)
        return take_along_axis(a, _nondifferentiable.argsort(a, axis, **options), axis)
    return take_along_axis(a, backend.argsort(raw(a), axis=axis, **options), axis)


@traceable
def partition(a, kth, axis=-1, kind="introselect", order=None):
    a, axis = _ordering_input("partition", a, axis, order)
    options = supported_options(_xp(a).argpartition, kind=kind)  # CuPy's takes no kind=
    ndim = _ndim(a)
    # (vmap: each example its own permutation, the batch axes in front of the values map_values hands over)
    order = map_values(lambda v: backend.argpartition(v, kth, axis=axis - ndim, **options), a)
    return take_along_axis(a, order, axis)


def _take_along_axis_batched(arr, indices, axis):
    """take_along_axis with batched indices (vmap): a one-hot mask of the indices times ``arr``, summed along
    ``axis`` (O(n) per gathered element, n the axis length); its derivative is the mask's transpose."""
    if axis is None:
        arr, axis = ravel(arr), 0
    shape = _shape(arr)
    axis = normalize_axes(axis, len(shape))[0]
    if len(aval(indices)[0]) != len(shape):
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    mask = moveaxis(one_hot(indices, shape[axis], aval(arr)[1]), axis, -2)  # (..., m, n)
    values = expand_dims(moveaxis(finite_part(arr), axis, -1), -2)  # (..., 1, n)
    gathered = moveaxis(SUM.bind(mask * values, axis=(len(shape),), keepdims=False), -1, axis)  # (..., m)
    n, nd = shape[axis], len(shape)

    def gather(a, i):  # the same gather of the plain values (the batch axes in front: broadcast)
        lead = builtins.max(a.ndim, i.ndim) - nd
        a, i = a.reshape((1,) * (lead + nd - a.ndim) + a.shape), i.reshape((1,) * (lead + nd - i.ndim) + i.shape)
        return _xp(a).take_along_axis(a, wrapped(i, n), axis=lead + axis)
    gathered = exactly(gathered, map_values(gather, arr, indices))
    return gathered if aval(gathered)[1] == aval(arr)[1] else astype(gathered, aval(arr)[1])  # (sums widen ints)


def _integer_indices(a, indices, error):
    index = _index_array(a, indices)
    if index.dtype.kind == "b" and error is TypeError:
        return index.astype(_np.intp)  # take casts booleans to 0/1 like NumPy ('safe' casting)
    if index.dtype.kind not in "iu":
        if error is TypeError:
            raise TypeError(f"Cannot cast array data from {index.dtype!r} to {_np.dtype(_np.intp)!r} according "
                            f"to the rule 'safe'")
        raise IndexError("`indices` must be an integer array")
    return index


@traceable
def take(a, indices, axis=None, out=None, mode="raise"):
    no_out("take", out=out)
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    axis = normalize_axes(axis, _ndim(a))[0]
    if is_batched(indices) and mode == "raise":  # (vmap: a gather through a one-hot mask)
        return getitem(a, (slice(None),) * axis + (indices,))
    index = _integer_indices(a, indices, TypeError)
    n = _shape(a)[axis]
    if mode == "wrap" or mode == "clip":
        if n == 0 and index.size:
            raise IndexError("cannot do a non-empty take from an empty axes.")
        index = index % n if mode == "wrap" else _xp(a).clip(index, 0, n - 1)
    elif mode != "raise":
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    return a[_along(axis, index)]


@traceable
def take_along_axis(arr, indices, axis=-1):
    """Gathers through one flat index into ``ravel(arr)``, so the backward pass is a single 1-D scatter-add."""
    arr = asarray(arr)
    if is_batched(indices):
        return _take_along_axis_batched(arr, indices, axis)
    index = _integer_indices(arr, indices, IndexError)
    if axis is None:
        if index.ndim != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension.")
        arr, axis = ravel(arr), 0
    shape = _shape(arr)
    axis = normalize_axes(axis, len(shape))[0]
    if index.ndim != len(shape):
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    n = shape[axis]
    if index.size and backend.on_host(_xp(arr)):  # NumPy's bounds error where reading the index costs no transfer
        low, high = int(index.min()), int(index.max())
        bad = high if high >= n else low if low < -n else None
        if bad is not None:
            raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")
    xp = _xp(arr)
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    flat = xp.where(index < 0, index + n, index) * strides[axis]
    for d, size in enumerate(shape):
        if d != axis:
            flat = flat + xp.arange(size).reshape((1,) * d + (-1,) + (1,) * (len(shape) - d - 1)) * strides[d]
    return ravel(arr)[flat]


@traceable
def select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise ValueError("select with an empty condition list is not possible")
    conditions = []
    for i, c in enumerate(condlist):
        c = constant(c) if is_batched(c) else backend.array_module(raw(c)).asarray(raw(c))  # (vmap: batched)
        if c.dtype != _np.bool_:
            raise TypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
        conditions.append(c)
    # The chain of wheres broadcasts every condition, choice and the default together, as NumPy does.
    result = default
    for c, choice in zip(reversed(conditions), reversed(list(choicelist))):
        result = where(c, asarray_like(choice, c), result)
    return result
