"""gpuad.numpy's array creation: array, asarray and copy (which keep Tensors traced), and the filled arrays.

``array`` and ``asarray`` of a Tensor, or of a (nested) list holding Tensors, give a traced array (assembled by
``_dispatch.array_from``, with NumPy's shape and dtype); of plain data they are the backend's own. zeros, ones,
empty, eye and identity make plain arrays on the default backend (GPUAD_BACKEND; CuPy when a GPU is present),
and so do full, linspace and arange on plain arguments; a traced fill value of ``full``/``full_like``, traced
endpoints of ``linspace`` and a traced start or step of ``arange`` stay differentiable. zeros_like and its kin
make plain arrays like their argument.
"""
from __future__ import annotations

import operator

import numpy as _np

from .. import backend
from ..core import aval, constant, is_float_dtype, raw, Tensor
from ._dispatch import array_from, has_tensor, is_backend_array, is_nested, module_of, plain_values
from ._elementwise import floor as _floor, log10, sign, where as _where
from ._shapes import astype, broadcast_to, concatenate, expand_dims, moveaxis, reshape

__all__ = ["array", "asarray", "copy", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "identity",
           "logspace", "geomspace", "zeros_like", "ones_like", "empty_like", "full_like"]


def array(object, dtype=None, copy=True, **kwargs):
    if isinstance(object, Tensor):
        return astype(object, dtype) if dtype is not None else object
    if is_nested(object) and has_tensor(object):
        out = array_from(object)
        return astype(out, dtype) if dtype is not None else out
    module = module_of((object,)) if is_backend_array(object) else backend.default_module()
    return module.array(object, dtype=dtype, copy=copy, **kwargs)


def asarray(a, dtype=None, **kwargs):
    if isinstance(a, Tensor) or (type(a) in (list, tuple) and has_tensor(a)):
        return array(a, dtype)
    module = module_of((a,)) if is_backend_array(a) else backend.default_module()
    return module.asarray(a, dtype=dtype, **kwargs)


def asarray_like(value, like):
    """``value`` as an array on ``like``'s backend when it is Python data (a list, a scalar); arrays and Tensors
    are returned as they are. Compositions use it so that constants follow their operands onto the GPU."""
    if isinstance(value, Tensor) or is_backend_array(value):
        return value
    if is_nested(value) and has_tensor(value):
        return array_from(value)
    return module_of((like,)).asarray(value)


def copy(a, order="K", subok=False):
    return array(a, copy=True) if has_tensor((a,)) else module_of((a,)).copy(a, order=order)


def _creator(name):
    def fn(*args, **kwargs):
        if has_tensor(args) or has_tensor(kwargs.values()):
            # shapes, counts and sizes have no derivative: their values are what counts
            args, kwargs = plain_values(args), {k: plain_values(v) for k, v in kwargs.items()}
        return getattr(backend.default_module(), name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"numpy.{name} on the default backend (GPUAD_BACKEND; CuPy when a GPU is present)."
    return fn


zeros, ones, empty, eye, identity = (_creator(n) for n in ("zeros", "ones", "empty", "eye", "identity"))


def full(shape, fill_value, dtype=None, order="C", **kwargs):
    """numpy.full; a traced ``fill_value`` (a scalar, or anything that broadcasts to ``shape``, a list holding
    traced values included) stays differentiable."""
    if not has_tensor((fill_value,)):
        return backend.default_module().full(plain_values(shape), fill_value, dtype=dtype, order=order, **kwargs)
    fill = asarray(fill_value)
    shape = (shape,) if isinstance(shape, int) or hasattr(shape, "__index__") else tuple(shape)
    return broadcast_to(astype(fill, dtype) if dtype is not None else fill, tuple(int(n) for n in shape))


def _traced_or_default(name, fn):
    """``fn`` (NumPy's formula over gpuad functions) when an argument is traced; else the backend's (the
    arguments' or the default one), or ``fn`` on the plain values where that backend lacks the function or these
    arguments (CuPy has no geomspace)."""

    def wrapper(*args, **kwargs):
        if has_tensor(args) or has_tensor(kwargs.values()):
            return fn(*args, **kwargs)
        arrays = [a for a in (*args, *kwargs.values()) if is_backend_array(a)]
        target = getattr(module_of(arrays) if arrays else backend.default_module(), name, None)
        if target is None or not backend.accepts(target, args, kwargs):
            return fn(*args, **kwargs)
        return target(*args, **kwargs)
    wrapper.__name__ = name
    wrapper.__doc__ = (f"numpy.{name}; differentiable in its traced start/stop (NumPy's own formula), else a "
                       f"plain array on the default backend or the arguments' backend.")
    return wrapper


def _on_one_backend(*values):
    """``values`` as arrays, Python data placed on the backend of the first array or Tensor among them."""
    like = next((v for v in values if isinstance(v, Tensor) or is_backend_array(v)), None)
    return tuple(asarray(v if like is None else asarray_like(v, raw(like))) for v in values)


def _result_dtype(*values, floating=False):
    dtypes = [aval(v)[1] if aval(v)[1] is not None else _np.asarray(raw(v)).dtype for v in values]
    return _np.result_type(*dtypes, *([float] if floating else []))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, **kwargs):
    """numpy.linspace, differentiable in traced ``start`` and ``stop`` (scalars or arrays): NumPy's steps,
    ``start + i * (stop - start) / div``, with the last sample ``stop`` itself when ``endpoint``."""
    if not has_tensor((start, stop)):
        return backend.default_module().linspace(start, stop, plain_values(num), endpoint, retstep, dtype, axis,
                                                 **kwargs)
    num = operator.index(plain_values(num))
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    start, stop = asarray(start), asarray(stop)
    result = _result_dtype(start, stop, floating=True)
    start, stop = astype(start, result), astype(stop, result)
    div = (num - 1) if endpoint else num
    delta = stop - start
    shape = aval(delta)[0]
    xp = module_of((raw(delta),))
    steps = xp.arange(num, dtype=result).reshape((-1,) + (1,) * len(shape))
    step = delta / div if div > 0 else delta * _np.nan
    y = start + steps * step if div > 0 else start + steps * delta
    if endpoint and num > 1:
        last = xp.arange(num).reshape((-1,) + (1,) * len(shape)) == num - 1
        y = _where(last, stop, y)
    if axis != 0:
        y = moveaxis(y, 0, axis)
    if dtype is not None:
        dtype = _np.dtype(dtype)
        if dtype.kind in "iu":
            y = _floor(y)
        y = astype(y, dtype)
    return (y, step) if retstep else y


def _logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    if len(aval(base)[0]) > 0:  # an array base broadcasts with start and stop first (NumPy's rule)
        ndmax = len(_np.broadcast_shapes(*(aval(v)[0] for v in (start, stop, base))))
        start, stop, base = (reshape(v, (1,) * (ndmax - len(aval(v)[0])) + aval(v)[0])
                             for v in _on_one_backend(start, stop, base))
        base = expand_dims(base, axis=axis)
    y = linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    out = asarray(asarray_like(base, raw(y))) ** y
    return out if dtype is None else astype(out, dtype)


def _geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    start, stop = _on_one_backend(start, stop)
    start, stop = start * 1.0, stop * 1.0
    # NumPy's error where reading the endpoints costs no device-to-host transfer (on the GPU: inf/nan instead)
    if backend.on_host(module_of((raw(start), raw(stop)))) and (
            bool(_np.any(raw(start) == 0)) or bool(_np.any(raw(stop) == 0))):
        raise ValueError("Geometric sequence cannot include zero")
    dt = _np.result_type(aval(start)[1], aval(stop)[1], float(num))
    start, stop = astype(start, dt), astype(stop, dt)
    out_sign = constant(sign(start))  # (under vmap, still batched)
    start = start / out_sign
    stop = stop / out_sign
    result = _logspace(log10(start), log10(stop), num=num, endpoint=endpoint, base=10.0, dtype=dt)
    if num > 0:  # the endpoints exactly (10 ** log10(x) need not be x)
        shape = aval(result)[0]
        parts = [broadcast_to(start, (1,) + shape[1:]), result[1:]]
        if num > 1 and endpoint:
            parts = [parts[0], result[1:-1], broadcast_to(stop, (1,) + shape[1:])]
        result = concatenate(parts, 0)
    result = out_sign * result
    if axis != 0:
        result = moveaxis(result, 0, axis)
    return result if dtype is None else astype(result, dtype)


logspace = _traced_or_default("logspace", _logspace)
geomspace = _traced_or_default("geomspace", _geomspace)


def arange(*args, **kwargs):
    """numpy.arange; a traced ``start`` or ``step`` of a floating result stays differentiable (``start + i *
    step``); the bounds only set how many values there are."""
    if not has_tensor(args) and not has_tensor(kwargs.values()):
        return backend.default_module().arange(*args, **kwargs)
    plain = backend.default_module().arange(*plain_values(args), **{k: plain_values(v) for k, v in kwargs.items()})
    names = ("start", "stop", "step") if len(args) > 1 or "stop" in kwargs else ("stop",)
    given = {**dict(zip(names, args)), **kwargs}
    start = given.get("start") if given.get("start") is not None else 0
    step = given.get("step") if given.get("step") is not None else 1
    if not is_float_dtype(plain.dtype) or not has_tensor((start, step)):
        return plain
    index = module_of((plain,)).arange(plain.shape[0], dtype=plain.dtype)
    return astype(asarray(start), plain.dtype) + index * astype(asarray(step), plain.dtype)


def _like(name):
    def fn(a, *args, dtype=None, **kwargs):
        v = plain_values(a)
        module = module_of((v,))
        if isinstance(a, Tensor) and not args and "shape" not in kwargs:
            kwargs["shape"] = aval(a)[0]  # (under vmap: one example's shape, the same for every example)
        return getattr(module, name)(v if hasattr(v, "shape") else module.asarray(v), *args, dtype=dtype, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"numpy.{name}: a plain array shaped like ``a`` (constants carry no derivative)."
    return fn


zeros_like, ones_like, empty_like = (_like(n) for n in ("zeros_like", "ones_like", "empty_like"))


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """NumPy's full_like; a traced ``fill_value`` (a scalar or anything broadcastable) stays differentiable."""
    if not has_tensor((fill_value,)):
        v = raw(a)
        module = backend.array_module(v, raw(fill_value))
        # Only the options given differently from NumPy's defaults: CuPy's full_like takes no device= and raises
        # on subok unless it is None.
        extra = {key: value for key, value, default in (("subok", subok, True), ("device", device, None))
                 if value is not default}
        if isinstance(a, Tensor) and shape is None:
            shape = aval(a)[0]  # (under vmap: one example's shape, the same for every example)
        return module.full_like(v if hasattr(v, "shape") else module.asarray(v), fill_value, dtype=dtype,
                                order=order, shape=shape, **extra)
    a = array_from(a)
    target = aval(a)[0] if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
    dtype = _np.dtype(dtype) if dtype is not None else aval(a)[1] or _np.asarray(raw(a)).dtype
    return broadcast_to(astype(asarray(fill_value), dtype), target)
