"""``gpuad.numpy``: NumPy's functions, recorded when their arguments are traced.

Use it as ``import gpuad.numpy as gnp`` (or ``as np``). Elementwise functions are generated from the rule table
rows; the others normalise NumPy's arguments (axis, keepdims, shapes) and bind the structural primitives. When no
argument is a gpuad Tensor, every function here hands its arguments to the NumPy (or CuPy) function of the same
name, so ``gnp`` is a drop-in for numpy in plain code and returns plain backend arrays.
"""
from __future__ import annotations

import builtins
import functools
import math
import operator

import numpy as _np

from .. import backend
from ..core import aval, bind, raw, Tensor
from ..ops import elementwise as _ew
from ..ops.structural import (AMAX, AMIN, BROADCAST_TO, CONCATENATE, CONVERT, GETITEM, MATMUL, PROD, RESHAPE,
                              SCATTER_ADD, SUM, TRANSPOSE)
from ..rules import Elementwise

pi, e, inf, nan, newaxis = _np.pi, _np.e, _np.inf, _np.nan, None
float16, float32, float64, int32, int64, bool_ = _np.float16, _np.float32, _np.float64, _np.int32, _np.int64, _np.bool_
ndarray = _np.ndarray


# ---- dispatch helpers ---------------------------------------------------------------------------------------

def _has_tensor(values):
    for v in values:
        if isinstance(v, Tensor):
            return True
        if type(v) in (list, tuple) and _has_tensor(v):
            return True
    return False


def _module_of(values):
    flat = []
    for v in values:
        if type(v) in (list, tuple):
            flat.extend(raw(x) for x in v)
        else:
            flat.append(raw(v))
    return backend.array_module(*flat)


def traceable(fn):
    """Run ``fn`` (the traced implementation) when an argument is a gpuad Tensor; otherwise call the backend
    module's function of the same name, so plain arrays get NumPy's (or CuPy's) exact behaviour."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _has_tensor(args) or _has_tensor(kwargs.values()):
            return fn(*args, **kwargs)
        module = _module_of((*args, *kwargs.values()))
        return getattr(module, name)(*args, **kwargs)

    return wrapper


def _no_out(name, **unsupported):
    for key, value in unsupported.items():
        if value is not None and value is not False:
            raise TypeError(f"gpuad.numpy.{name}: {key}= is not supported on traced values (gpuad is "
                            f"out-of-place); use the returned array instead")


def _axes(axis, ndim):
    """NumPy's axis argument as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) or hasattr(axis, "__index__") else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise _np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    return tuple(sorted(out))


def _plain(value):
    """Lists and tuples of numbers become arrays; everything else is left as it is."""
    if type(value) in (list, tuple):
        if _has_tensor(value):
            return stack(value)
        return _module_of(value).asarray(value)
    return value


# ---- elementwise functions, generated from the rule rows ---------------------------------------------------

def _elementwise(prim: Elementwise, name: str):
    def fn(*args, **kwargs):
        if len(args) != prim.arity:
            raise TypeError(f"gpuad.numpy.{name} takes {prim.arity} array argument(s), got {len(args)}")
        if kwargs:
            if _has_tensor(args):
                raise TypeError(f"gpuad.numpy.{name}: keyword arguments {sorted(kwargs)} are not supported on "
                                f"traced values (gpuad is out-of-place; cast with astype instead of dtype=)")
            return getattr(_module_of(args), prim.name)(*args, **kwargs)
        return bind(prim, [_plain(a) if type(a) in (list, tuple) else a for a in args], {})

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"numpy.{name}, differentiable. Forward: {prim.forward.source}; partial derivatives: "
                  + ", ".join(f"d/d{a} = {p.source if p else 'none'}" for a, p in zip(prim.args, prim.partials)))
    return fn


for _prim in vars(_ew).values():
    if isinstance(_prim, Elementwise) and _prim.name not in ("where", "clip"):
        globals()[_prim.name] = _elementwise(_prim, _prim.name)

abs = absolute  # noqa: F821 (generated above)
true_divide = divide  # noqa: F821
_where3 = _elementwise(_ew.WHERE, "where")
_clip3 = _elementwise(_ew.CLIP, "clip")


def where(condition, x=None, y=None):
    if x is None and y is None:
        return _module_of((condition,)).nonzero(raw(condition))
    return _where3(raw(condition), x, y)


def clip(a, a_min=None, a_max=None, **kwargs):
    if not _has_tensor((a, a_min, a_max)):
        return _module_of((a, a_min, a_max)).clip(a, a_min, a_max, **kwargs)
    _no_out("clip", **kwargs)
    if a_min is None and a_max is None:
        raise ValueError("clip: one of a_min and a_max must be given")
    if a_min is None:
        return minimum(a, a_max)  # noqa: F821
    if a_max is None:
        return maximum(a, a_min)  # noqa: F821
    return _clip3(a, a_min, a_max)


# ---- reductions -------------------------------------------------------------------------------------------

@traceable
def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _no_out("sum", out=out, initial=initial, where=where)
    if dtype is not None:
        a = astype(a, dtype)
    return SUM.bind(a, axis=_axes(axis, builtins.len(aval(a)[0])), keepdims=builtins.bool(keepdims))


@traceable
def mean(a, axis=None, dtype=None, out=None, keepdims=False, where=None):
    _no_out("mean", out=out, where=where)
    shape = aval(a)[0]
    axes = _axes(axis, builtins.len(shape))
    count = math.prod(shape[i] for i in axes)
    total = sum(a, axes, dtype, keepdims=keepdims)
    return total / count if count else total * _np.nan


def _extremum(prim, name):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _no_out(name, out=out, initial=initial, where=where)
        shape = aval(a)[0]
        if builtins.any(n == 0 for n in shape):
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        return prim.bind(a, axis=_axes(axis, builtins.len(shape)), keepdims=builtins.bool(keepdims))
    fn.__name__ = name
    return traceable(fn)


max = amax = _extremum(AMAX, "max")
min = amin = _extremum(AMIN, "min")
amax.__name__ = "max"


@traceable
def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _no_out("prod", out=out, initial=initial, where=where)
    if dtype is not None:
        a = astype(a, dtype)
    axes = _axes(axis, builtins.len(aval(a)[0]))
    if _reductions.has_zero(a):
        return _reductions.tree_product(a, axes, builtins.bool(keepdims))
    return PROD.bind(a, axis=axes, keepdims=builtins.bool(keepdims))


# ---- shapes -------------------------------------------------------------------------------------------------

def _resolve_shape(shape, size):
    shape = (shape,) if isinstance(shape, int) or hasattr(shape, "__index__") else tuple(int(n) for n in shape)
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        if shape.count(-1) > 1 or known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if n == -1 else n for n in shape)
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


@traceable
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise NotImplementedError("gpuad.numpy.reshape supports order='C' only on traced values")
    shape = newshape if shape is None else shape
    old = aval(a)[0]
    new = _resolve_shape(shape, math.prod(old))
    return a if new == old else RESHAPE.bind(a, shape=new)


@traceable
def ravel(a, order="C"):
    return reshape(a, (-1,), order)


def _axis_list(axis, ndim, argname=None):
    """Axis argument(s) as a list of non-negative axes in the order given, with NumPy's AxisError and
    repeated-axis errors."""
    axes = [axis] if isinstance(axis, int) or hasattr(axis, "__index__") else list(axis)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise _np.exceptions.AxisError(a, ndim, argname)
        out.append(a % ndim)
    if builtins.len(set(out)) != builtins.len(out):
        raise ValueError(f"repeated axis in `{argname}` argument" if argname else "repeated axis")
    return out


@traceable
def transpose(a, axes=None):
    ndim = builtins.len(aval(a)[0])
    if axes is None:
        axes = tuple(range(ndim))[::-1]
    else:
        axes = tuple(axes)
        if builtins.len(axes) != ndim:
            raise ValueError("axes don't match array")
        axes = tuple(_axis_list(axes, ndim))
    return a if axes == tuple(range(ndim)) else TRANSPOSE.bind(a, axes=axes)


@traceable
def swapaxes(a, axis1, axis2):
    ndim = builtins.len(aval(a)[0])
    axis1, axis2 = _axis_list(axis1, ndim, "axis1")[0], _axis_list(axis2, ndim, "axis2")[0]
    axes = list(range(ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(a, axes)


@traceable
def moveaxis(a, source, destination):
    ndim = builtins.len(aval(a)[0])
    src, dst = _axis_list(source, ndim, "source"), _axis_list(destination, ndim, "destination")
    if builtins.len(src) != builtins.len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    order = [n for n in range(ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


@traceable
def broadcast_to(array, shape, subok=False):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    old = aval(array)[0]
    if old == shape:
        return array
    _np.broadcast_shapes(old, shape)  # NumPy's own error for incompatible shapes
    return BROADCAST_TO.bind(array, shape=shape)


@traceable
def expand_dims(a, axis):
    shape = list(aval(a)[0])
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = builtins.len(shape) + builtins.len(axes)
    for ax in sorted(_axis_list(axes, ndim)):
        shape.insert(ax, 1)
    return reshape(a, tuple(shape))


@traceable
def squeeze(a, axis=None):
    shape = aval(a)[0]
    if axis is None:
        axes = [i for i, n in enumerate(shape) if n == 1]
    else:
        axes = _axes(axis, builtins.len(shape))
        for ax in axes:
            if shape[ax] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return reshape(a, tuple(n for i, n in enumerate(shape) if i not in axes))


@traceable
def concatenate(arrays, axis=0, out=None, dtype=None):
    _no_out("concatenate", out=out)
    arrays = [astype(x, dtype) if dtype is not None else x for x in arrays]
    if axis is None:
        arrays = [ravel(x) for x in arrays]
        axis = 0
    ndim = builtins.len(aval(arrays[0])[0])
    if ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    return CONCATENATE.bind(*arrays, axis=_axis_list(axis, ndim, "axis")[0])


@traceable
def stack(arrays, axis=0, out=None, dtype=None):
    _no_out("stack", out=out)
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {aval(x)[0] for x in arrays}
    if builtins.len(shapes) != 1:
        raise ValueError("all input arrays must have the same shape")
    ndim = builtins.len(aval(arrays[0])[0]) + 1
    axis = _axis_list(axis, ndim, "axis")[0]
    return concatenate([expand_dims(x, axis) for x in arrays], axis, dtype=dtype)


@traceable
def astype(x, dtype, copy=True):
    dtype = _np.dtype(dtype)
    return x if aval(x)[1] == dtype else CONVERT.bind(x, dtype=dtype)


def _normalize_index(index, like):
    """An index for ``like``: traced index arrays give their values, and lists and arrays of another backend
    (NumPy index arrays for a CuPy array) move to ``like``'s backend."""
    if not isinstance(index, tuple):
        index = (index,)
    module = _module_of((like,))
    out = []
    for i in index:
        if isinstance(i, Tensor):
            i = raw(i)
        if type(i) is list or (_is_backend_array(i) and not isinstance(i, module.ndarray)
                               and getattr(i, "ndim", 0) > 0):
            i = module.asarray(i)
        out.append(i)
    return tuple(out) if builtins.len(out) != 1 else out[0]


def _getitem(a, index):
    return GETITEM.bind(a, index=_normalize_index(index, a))


class _IndexUpdate:
    """``t.at[index].set(v)`` / ``.add(v)``: out-of-place updates of a traced array (JAX's spelling)."""

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return _IndexUpdateAt(self.array, _normalize_index(index, self.array))


class _IndexUpdateAt:
    """The pending update ``t.at[index]``: each method returns a new array and leaves ``t`` as it was."""

    def __init__(self, array, index):
        self.array, self.index = array, index

    def get(self):
        return _getitem(self.array, self.index)

    def _selection(self):
        """The module, the array's shape and dtype, and the shape of ``array[index]`` (from a zero-stride proxy,
        so nothing of the array's size is gathered)."""
        module = _module_of((self.array,))
        shape, dtype = aval(self.array)
        proxy = module.broadcast_to(module.zeros((), dtype=module.bool_), shape)
        return module, shape, dtype, proxy[self.index].shape

    def _values(self, values, module, dtype, selected):
        """``values`` cast to the array's dtype (as NumPy's assignment does) and broadcast over the selection."""
        values = values if isinstance(values, Tensor) else module.asarray(raw(values))
        return broadcast_to(astype(values, dtype), selected)

    def add(self, values):
        """Add ``values`` at ``index``; repeated indices accumulate (like ``numpy.add.at``)."""
        module, shape, dtype, selected = self._selection()
        values = self._values(values, module, dtype, selected)
        return self.array + SCATTER_ADD.bind(values, index=self.index, shape=shape)

    def set(self, values):
        """Replace the elements at ``index``; at a repeated index the last value wins, as in NumPy's assignment,
        and only that value gets a derivative."""
        module, shape, dtype, selected = self._selection()
        values = self._values(values, module, dtype, selected)
        # Number the selected positions and assign the numbers: each element keeps the number of the write that
        # NumPy's own assignment lets win; -1 marks the elements not selected at all.
        order = module.arange(math.prod(selected)).reshape(selected)
        winner = module.full(shape, -1, dtype=order.dtype)
        winner[self.index] = order
        chosen = winner[self.index] == order
        if not builtins.bool(chosen.all()):
            values = where(chosen, values, 0)
        return where(winner < 0, self.array, 0) + SCATTER_ADD.bind(values, index=self.index, shape=shape)


# ---- products ---------------------------------------------------------------------------------------------

@traceable
def matmul(x1, x2, out=None):
    _no_out("matmul", out=out)
    if builtins.len(aval(x1)[0]) == 0 or builtins.len(aval(x2)[0]) == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions (use multiply for scalars)")
    return MATMUL.bind(x1, x2)


@traceable
def tensordot(a, b, axes=2):
    sa, sb = aval(a)[0], aval(b)[0]
    if isinstance(axes, int):
        ax_a = list(range(builtins.len(sa) - axes, builtins.len(sa)))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
    if isinstance(axes, int) and not 0 <= axes <= builtins.min(builtins.len(sa), builtins.len(sb)):
        raise ValueError(f"tensordot: axes={axes} must be between 0 and the smaller operand's ndim")
    if builtins.len(ax_a) != builtins.len(ax_b):
        raise ValueError(f"tensordot: axes pair {builtins.len(ax_a)} axes of a with {builtins.len(ax_b)} of b; "
                         f"give as many of each")
    ax_a = [x % builtins.len(sa) for x in ax_a]
    ax_b = [x % builtins.len(sb) for x in ax_b]
    for i, j in zip(ax_a, ax_b):
        if sa[i] != sb[j]:
            raise ValueError(f"shape-mismatch for sum: tensordot contracts axis {i} of a (length {sa[i]}) with "
                             f"axis {j} of b (length {sb[j]})")
    free_a = [i for i in range(builtins.len(sa)) if i not in ax_a]
    free_b = [i for i in range(builtins.len(sb)) if i not in ax_b]
    k = math.prod(sa[i] for i in ax_a)
    a2 = reshape(transpose(a, free_a + ax_a), (math.prod(sa[i] for i in free_a), k))
    b2 = reshape(transpose(b, ax_b + free_b), (k, math.prod(sb[i] for i in free_b)))
    return reshape(matmul(a2, b2), tuple(sa[i] for i in free_a) + tuple(sb[i] for i in free_b))


@traceable
def dot(a, b, out=None):
    _no_out("dot", out=out)
    na, nb = builtins.len(aval(a)[0]), builtins.len(aval(b)[0])
    if na == 0 or nb == 0:
        return multiply(a, b)  # noqa: F821
    if nb <= 2 and na <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([-1], [0 if nb == 1 else -2]))


@traceable
def vdot(a, b):
    if size(a) != size(b):
        raise ValueError(f"vdot: vectors have different lengths ({size(a)} and {size(b)} elements)")
    return sum(ravel(a) * ravel(b))


@traceable
def inner(a, b):
    if builtins.len(aval(a)[0]) == 0 or builtins.len(aval(b)[0]) == 0:
        return multiply(a, b)  # noqa: F821
    return tensordot(a, b, axes=([-1], [-1]))


@traceable
def outer(a, b, out=None):
    _no_out("outer", out=out)
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


# ---- creation ---------------------------------------------------------------------------------------------

def array(object, dtype=None, copy=True, **kwargs):
    if isinstance(object, Tensor):
        return astype(object, dtype) if dtype is not None else object
    if type(object) in (list, tuple) and _has_tensor(object):
        out = stack([array(x) for x in object])
        return astype(out, dtype) if dtype is not None else out
    module = _module_of((object,)) if _is_backend_array(object) else backend.default_module()
    return module.array(object, dtype=dtype, copy=copy, **kwargs)


def asarray(a, dtype=None, **kwargs):
    if isinstance(a, Tensor) or (type(a) in (list, tuple) and _has_tensor(a)):
        return array(a, dtype)
    module = _module_of((a,)) if _is_backend_array(a) else backend.default_module()
    return module.asarray(a, dtype=dtype, **kwargs)


def _asarray_like(value, like):
    """``value`` as an array on ``like``'s backend when it is Python data (a list, a scalar); arrays and Tensors
    are returned as they are. Compositions use it so that constants follow their operands onto the GPU."""
    if isinstance(value, Tensor) or _is_backend_array(value):
        return value
    if type(value) in (list, tuple) and _has_tensor(value):
        return array(value)
    return _module_of((like,)).asarray(value)


def _is_backend_array(value):
    return hasattr(value, "__array_priority__") or hasattr(value, "dtype")


def _creator(name):
    def fn(*args, **kwargs):
        return getattr(backend.default_module(), name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"numpy.{name} on the default backend (GPUAD_BACKEND; CuPy when a GPU is present)."
    return fn


zeros, ones, empty, full, arange, linspace, eye, identity = (
    _creator(n) for n in ("zeros", "ones", "empty", "full", "arange", "linspace", "eye", "identity"))


def _like(name):
    def fn(a, *args, dtype=None, **kwargs):
        v = raw(a)
        module = _module_of((v,))
        return getattr(module, name)(v if hasattr(v, "shape") else module.asarray(v), *args, dtype=dtype, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"numpy.{name}: a plain array shaped like ``a`` (constants carry no derivative)."
    return fn


zeros_like, ones_like, empty_like, full_like = (_like(n) for n in ("zeros_like", "ones_like", "empty_like",
                                                                    "full_like"))


def shape(a):
    return aval(a)[0]


def ndim(a):
    return builtins.len(aval(a)[0])


def size(a):
    return math.prod(aval(a)[0])


def isscalar(a):
    return _np.isscalar(raw(a))


# ---- the rest of NumPy, one module per family (each defines __all__) ----------------------------------------
from ._reductions import *  # noqa: E402,F401,F403
from . import _reductions  # noqa: E402
from ._shapes import *  # noqa: E402,F401,F403
from ._linalg import *  # noqa: E402,F401,F403
from ._constant import *  # noqa: E402,F401,F403
from . import linalg  # noqa: E402,F401


@traceable
def broadcast_arrays(*args, subok=False):
    shape = _np.broadcast_shapes(*(aval(a)[0] for a in args))
    return tuple(broadcast_to(a, shape) for a in args)


@traceable
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    n = builtins.len(xi)
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    shapes = [[1] * n for _ in xi]
    for i, x in enumerate(xi):
        axis = (1 - i if i < 2 else i) if indexing == "xy" and n > 1 else i
        shapes[i][axis] = -1
    grids = [reshape(x, tuple(s)) for x, s in zip(xi, shapes)]
    return tuple(grids) if sparse else broadcast_arrays(*grids)


def copy(a, order="K", subok=False):
    return array(a, copy=True) if isinstance(a, Tensor) else _module_of((a,)).copy(a, order=order)


fabs = absolute  # noqa: F821 (real inputs: the same function)


@traceable
def float_power(x1, x2):
    return power(astype(x1, _np.float64), astype(x2, _np.float64) if aval(x2)[1] is not None else x2)  # noqa


@traceable
def matrix_transpose(x):
    return swapaxes(x, -1, -2)


@traceable
def vecdot(x1, x2, axis=-1):
    return sum(x1 * x2, axis=axis)


# The public surface: what NumPy users call, not the helpers this module imports (PEP 562 keeps dir() clean).
_INTERNAL = {"annotations", "builtins", "functools", "math", "operator", "backend", "Tensor", "bind", "raw",
             "aval", "Elementwise", "traceable"}
__all__ = sorted(n for n, v in globals().items()
                 if not n.startswith("_") and n not in _INTERNAL and not n.isupper()
                 and (not isinstance(v, type(_np)) or n == "linalg"))


def __dir__():
    return __all__
