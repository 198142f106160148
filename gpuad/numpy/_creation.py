"""gpuad.numpy's array creation: array, asarray and copy (which keep Tensors traced), and the filled arrays.

``array`` and ``asarray`` of a Tensor, or of a list holding Tensors, give a traced array (stacked); of plain
data they are the backend's own. zeros, ones, empty, full, arange, linspace, eye and identity make plain arrays
on the default backend (GPUAD_BACKEND; CuPy when a GPU is present); zeros_like and its kin make plain arrays
like their argument, except ``full_like`` with a traced fill value, which stays differentiable.
"""
from __future__ import annotations

import numpy as _np

from .. import backend
from ..core import aval, raw, Tensor
from ._dispatch import has_tensor, is_backend_array, module_of
from ._shapes import astype, broadcast_to, stack

__all__ = ["array", "asarray", "copy", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "identity",
           "zeros_like", "ones_like", "empty_like", "full_like"]


def array(object, dtype=None, copy=True, **kwargs):
    if isinstance(object, Tensor):
        return astype(object, dtype) if dtype is not None else object
    if type(object) in (list, tuple) and has_tensor(object):
        out = stack([array(x) for x in object])
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
    if type(value) in (list, tuple) and has_tensor(value):
        return array(value)
    return module_of((like,)).asarray(value)


def copy(a, order="K", subok=False):
    return array(a, copy=True) if isinstance(a, Tensor) else module_of((a,)).copy(a, order=order)


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
        extra = {} if device is None else {"device": device}
        if isinstance(a, Tensor) and shape is None:
            shape = aval(a)[0]  # (under vmap: one example's shape, the same for every example)
        return module.full_like(v if hasattr(v, "shape") else module.asarray(v), fill_value, dtype=dtype,
                                order=order, subok=subok, shape=shape, **extra)
    target = aval(a)[0] if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
    dtype = _np.dtype(dtype) if dtype is not None else aval(a)[1] or _np.asarray(raw(a)).dtype
    return broadcast_to(astype(asarray(fill_value), dtype), target)
