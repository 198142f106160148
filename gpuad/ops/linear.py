"""Rule table for the linear primitives: reshape, transpose, broadcast_to and its transpose sum, convert,
getitem, scatter_add, concatenate, and matmul (linear in each operand); and finite_part, whose derivative is
the identity (the gathers of vmap read it).

Each row is one primitive: its NumPy evaluation (on the array module the backend seam picks) and its transpose
rule (linear ops: the JVP applies the op to the tangent; matmul is linear in each operand). Transposes are
written with ``bind`` on these same primitives, so they are differentiable in turn. ``sum_to`` (the cotangent of
a broadcast operand) is here too. The nonlinear reductions (max, min, prod) are in ``reductions``, the scans in
``scans``.
"""
from __future__ import annotations

import numpy

from .. import backend
from ..core import aval, is_float_dtype, is_half_dtype, raw
from ..rules import Custom, Linear


# ---- batching (vmap) helpers: a batched argument has the batch axis in front (see Primitive.batch) ----------

def batch_size(args, batched):
    return next(aval(a)[0][0] for a, b in zip(args, batched) if b)


def batch_all(args, batched):
    """Every argument with the batch axis in front: unbatched ones broadcast along it."""
    size = batch_size(args, batched)
    xp = backend.array_module(raw(args[list(batched).index(True)]))
    return [a if b else BROADCAST_TO.bind(a if hasattr(a, "shape") else xp.asarray(a), shape=(size,) + aval(a)[0])
            for a, b in zip(args, batched)]


def shifted(axis):
    """Axes (a tuple, or one int) past the batch axis."""
    return tuple(a + 1 for a in axis) if isinstance(axis, tuple) else axis + 1


def moveaxis(x, source, destination):
    order = [i for i in range(len(aval(x)[0])) if i != source]
    order.insert(destination, source)
    return x if source == destination else TRANSPOSE.bind(x, axes=tuple(order))


# ---- reshape / transpose / broadcast / convert ------------------------------------------------------------

RESHAPE = Linear(
    "reshape",
    lambda xp, x, shape: xp.reshape(x, shape),
    lambda ct, saved, params, avals, k: RESHAPE.bind(ct, shape=avals[0][0]),
    format=lambda a, p: f"reshape({a[0]}, {p['shape']})",
    adjoint=lambda k, ct, a, p: f"reshape({ct}, <shape of {a[0]}>)")
RESHAPE.batch = lambda args, batched, p: RESHAPE.bind(args[0], shape=aval(args[0])[0][:1] + p["shape"])

TRANSPOSE = Linear(
    "transpose",
    lambda xp, x, axes: xp.transpose(x, axes),
    lambda ct, saved, params, avals, k: TRANSPOSE.bind(ct, axes=tuple(numpy.argsort(params["axes"]).tolist())),
    format=lambda a, p: f"transpose({a[0]}, {p['axes']})",
    adjoint=lambda k, ct, a, p: f"transpose({ct}, {tuple(numpy.argsort(p['axes']).tolist())})")
TRANSPOSE.batch = lambda args, batched, p: TRANSPOSE.bind(args[0], axes=(0,) + shifted(p["axes"]))

BROADCAST_TO = Linear(
    "broadcast_to",
    lambda xp, x, shape: xp.broadcast_to(x, shape),
    lambda ct, saved, params, avals, k: sum_to(ct, *avals[0]),
    format=lambda a, p: f"broadcast_to({a[0]}, {p['shape']})",
    adjoint=lambda k, ct, a, p: f"sum_to({ct}, <shape of {a[0]}>)")


def _batch_broadcast_to(args, batched, params):
    x, shape = args[0], params["shape"]
    xshape = aval(x)[0]
    aligned = xshape[:1] + (1,) * (len(shape) + 1 - len(xshape)) + xshape[1:]
    x = RESHAPE.bind(x, shape=aligned) if aligned != xshape else x
    return BROADCAST_TO.bind(x, shape=xshape[:1] + shape)


BROADCAST_TO.batch = _batch_broadcast_to


def _convert_transpose(ct, saved, params, avals, k):
    dtype = avals[0][1]
    return CONVERT.bind(ct, dtype=dtype) if is_float_dtype(dtype) else None


def _convert_impl(xp, x, dtype):
    x = xp.asarray(x)
    if x.dtype.kind == "c" and numpy.dtype(dtype).kind != "c":
        x = x.real  # complex to real keeps the real part (the transpose of real-to-complex), without a warning
    return x.astype(dtype)


CONVERT = Linear(
    "convert",
    _convert_impl,
    _convert_transpose,
    format=lambda a, p: f"{a[0]}.astype({numpy.dtype(p['dtype']).name})",
    adjoint=lambda k, ct, a, p: f"{ct}.astype(<dtype of {a[0]}>)")
CONVERT.batch = lambda args, batched, p: CONVERT.bind(args[0], **p)


def _params_text(params):
    return ", ".join(f"{k}={v!r}" for k, v in params.items() if v not in (None, False))


def call_format(name):
    """How a reduction prints on the tape: ``sum(v1, axis=(0,))``."""
    return lambda args, params: f"{name}({', '.join(args + ([_params_text(params)] if _params_text(params) else []))})"


# ---- sum: broadcast_to's transpose ----------------------------------------------------------------------------

def keepdims_shape(shape, axis):
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def expand_reduced(value, axis, keepdims, shape):
    """A reduced value (or its cotangent) broadcast back over the input ``shape``."""
    if not keepdims:
        value = RESHAPE.bind(value, shape=keepdims_shape(shape, axis))
    return BROADCAST_TO.bind(value, shape=shape)


def half_sum(xp, x, axis, keepdims):
    """``xp.sum`` that accumulates float16/bfloat16 in float32 and rounds the total once to the input's dtype
    (NumPy's own float16 sum accumulates in float16): every sum of gpuad, the backward pass's included."""
    if is_half_dtype(x.dtype):
        return xp.sum(x, axis=axis, keepdims=keepdims, dtype=numpy.float32).astype(x.dtype)
    return xp.sum(x, axis=axis, keepdims=keepdims)


SUM = Linear(
    "sum",
    half_sum,
    lambda ct, saved, params, avals, k: expand_reduced(ct, params["axis"], params["keepdims"], avals[0][0]),
    format=call_format("sum"),
    adjoint=lambda k, ct, a, p: f"broadcast_to({ct}, <shape of {a[0]}>)")
SUM.batch = lambda args, batched, p: SUM.bind(args[0], axis=shifted(p["axis"]), keepdims=p["keepdims"])


def sum_to(value, shape, dtype):
    """``value`` summed over the axes along which an operand of ``shape`` was broadcast, cast to ``dtype``."""
    vshape, vdtype = aval(value)
    if vshape == shape and (vdtype == dtype or dtype is None or vdtype is None):
        return value
    if vshape != shape:
        lead = len(vshape) - len(shape)
        axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and vshape[i + lead] != 1)
        if axes:
            value = SUM.bind(value, axis=axes, keepdims=False)
        if aval(value)[0] != shape:
            value = RESHAPE.bind(value, shape=shape)
    vdtype = aval(value)[1]
    if dtype is not None and vdtype is not None and vdtype != dtype:
        value = CONVERT.bind(value, dtype=dtype)
    return value


# ---- indexing ---------------------------------------------------------------------------------------------

def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, numpy.integer)) for i in items)


def _scatter_add_impl(xp, values, index, shape):
    out = xp.zeros(shape, dtype=values.dtype if hasattr(values, "dtype") else xp.float64)
    if _is_basic_index(index):
        out[index] = values  # basic indices never repeat an element: plain assignment suffices
    else:
        backend.scatter_add(out, index, values)
    return out


def _index_text(index):
    items = index if isinstance(index, tuple) else (index,)

    def one(i):
        if isinstance(i, slice):
            return ":".join("" if v is None else str(v) for v in (i.start, i.stop)) + (
                f":{i.step}" if i.step is not None else "")
        if i is Ellipsis:
            return "..."
        if i is None:
            return "None"
        if hasattr(i, "shape") and i.shape:
            return f"<{i.dtype} array {tuple(i.shape)}>"
        return repr(i)
    return ", ".join(one(i) for i in items)


GETITEM = Linear(
    "getitem",
    lambda xp, x, index: xp.asarray(x)[index],
    lambda ct, saved, params, avals, k: SCATTER_ADD.bind(ct, index=params["index"], shape=avals[0][0]),
    format=lambda a, p: f"{a[0]}[{_index_text(p['index'])}]",
    adjoint=lambda k, ct, a, p: f"scatter_add(zeros, [{_index_text(p['index'])}], {ct})")

def _getitem_transpose_into(buffer, ct, params):
    index = params["index"]
    if _is_basic_index(index):
        buffer[index] += ct  # basic indices never repeat an element
    else:
        backend.scatter_add(buffer, index, ct)


GETITEM.transpose_into = _getitem_transpose_into

SCATTER_ADD = Linear(
    "scatter_add",
    _scatter_add_impl,
    lambda ct, saved, params, avals, k: GETITEM.bind(ct, index=params["index"]),
    format=lambda a, p: f"scatter_add(zeros{p['shape']}, [{_index_text(p['index'])}], {a[0]})",
    adjoint=lambda k, ct, a, p: f"{ct}[{_index_text(p['index'])}]")


def _advanced_lead(index):
    """Where the batch axis lands when ``(slice(None),) + index`` indexes a batched array: 0, or (advanced
    indices separated by a slice, an Ellipsis or None) the number of axes NumPy puts in front for them."""
    items = index if isinstance(index, tuple) else (index,)
    where, ndim = [], 0
    for j, i in enumerate(items):
        if isinstance(i, (int, numpy.integer)) and not isinstance(i, bool):
            where.append(j)
        elif hasattr(i, "ndim") and not isinstance(i, slice):
            where.append(j)
            ndim = max(ndim, 1 if i.dtype == bool and i.ndim else i.ndim)
    arrays = any(hasattr(items[j], "ndim") and items[j].ndim for j in where)
    return ndim if arrays and where != list(range(where[0], where[-1] + 1)) else 0


def _batch_getitem(args, batched, params):
    index = params["index"]
    out = GETITEM.bind(args[0], index=(slice(None),) + (index if isinstance(index, tuple) else (index,)))
    return moveaxis(out, _advanced_lead(index), 0)


def _batch_scatter_add(args, batched, params):
    index = params["index"]
    values = moveaxis(args[0], 0, _advanced_lead(index))
    return SCATTER_ADD.bind(values, index=(slice(None),) + (index if isinstance(index, tuple) else (index,)),
                            shape=aval(args[0])[0][:1] + params["shape"])


GETITEM.batch, SCATTER_ADD.batch = _batch_getitem, _batch_scatter_add


# ---- finite_part: what a one-hot contraction may read (vmap's gathers with a batched index) ------------------
# Its value is the array with inf and NaN zeroed (0 * inf is NaN, which a contraction would spread to every
# gathered element), its derivative the identity (the tangent of a selected inf still passes): not linear in
# value, a Custom row beside the gathers it serves.

def _finite_part_impl(xp, a):
    return backend.where(xp.isfinite(a), a, 0) if a.dtype.kind in "fc" or is_float_dtype(a.dtype) else a


FINITE_PART = Custom("finite_part", _finite_part_impl, lambda primals, tangents, out, params: tangents[0],
                     lambda ct, saved, params, avals, needed: [ct], saves=())
FINITE_PART.batch = lambda args, batched, params: FINITE_PART.bind(args[0])  # (elementwise: the batch as is)


# ---- joining ------------------------------------------------------------------------------------------------

def _concatenate_transpose(ct, saved, params, avals, k):
    axis = params["axis"]
    start = sum(a[0][axis] for a in avals[:k])
    index = (slice(None),) * (axis % len(avals[k][0])) + (slice(start, start + avals[k][0][axis]),)
    return sum_to(GETITEM.bind(ct, index=index), *avals[k])  # casts back when the inputs' dtypes differed


CONCATENATE = Linear(
    "concatenate",
    lambda xp, *xs, axis: xp.concatenate(xs, axis=axis),
    _concatenate_transpose,
    format=lambda a, p: f"concatenate([{', '.join(a)}], axis={p['axis']})",
    adjoint=lambda k, ct, a, p: f"{ct}[<part {k} along axis {p['axis']}>]")


def _batch_concatenate(args, batched, params):
    args = batch_all(args, batched)
    return CONCATENATE.bind(*args, axis=params["axis"] % (len(aval(args[0])[0]) - 1) + 1)


CONCATENATE.batch = _batch_concatenate


# ---- matmul -------------------------------------------------------------------------------------------------

def _matrix_view(shape, k):
    """How NumPy's matmul sees operand k of ``shape``: 1-D operands become a row (k=0) or a column (k=1)."""
    if len(shape) != 1:
        return shape
    return (1, shape[0]) if k == 0 else (shape[0], 1)


def _swap_last(v):
    n = len(aval(v)[0])
    axes = tuple(range(n - 2)) + (n - 1, n - 2)
    return TRANSPOSE.bind(v, axes=axes)


def _matmul_transpose(ct, saved, params, avals, k):
    x, y = saved
    xs, ys = aval(x)[0], aval(y)[0]
    x2, y2 = _matrix_view(xs, 0), _matrix_view(ys, 1)
    ct_shape = aval(ct)[0]
    if len(xs) == 1:
        ct_shape = ct_shape[:len(ct_shape) - (len(ys) != 1)] + (1,) + ct_shape[len(ct_shape) - (len(ys) != 1):]
    if len(ys) == 1:
        ct_shape = ct_shape + (1,)
    ct2 = RESHAPE.bind(ct, shape=ct_shape) if ct_shape != aval(ct)[0] else ct
    if k == 0:
        y2v = RESHAPE.bind(y, shape=y2) if y2 != ys else y
        g = MATMUL.bind(ct2, _swap_last(y2v))
        return sum_to(g, x2, avals[0][1]) if x2 == xs else RESHAPE.bind(sum_to(g, x2, avals[0][1]), shape=xs)
    x2v = RESHAPE.bind(x, shape=x2) if x2 != xs else x
    g = MATMUL.bind(_swap_last(x2v), ct2)
    return sum_to(g, y2, avals[1][1]) if y2 == ys else RESHAPE.bind(sum_to(g, y2, avals[1][1]), shape=ys)


MATMUL = Linear(
    "matmul",
    lambda xp, x, y: xp.matmul(x, y),
    _matmul_transpose,
    multilinear=True,
    format=lambda a, p: f"{a[0]} @ {a[1]}",
    adjoint=lambda k, ct, a, p: f"{ct} @ {a[1]}ᵀ" if k == 0 else f"{a[0]}ᵀ @ {ct}")
# (matmul's vmap rule is in ops.linalg, beside einsum's: it multiplies outer products elementwise)
