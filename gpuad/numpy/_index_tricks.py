"""gpuad.numpy's ``r_`` and ``c_``: NumPy's index-expression concatenators, differentiable in traced pieces.

``gnp.r_[a, 0.5, 1:4, b]`` and ``gnp.c_[a, b]`` follow NumPy's AxisConcatenator: slices become ``arange`` (or
``linspace`` with a complex step), scalars 1-element arrays, and a leading string directive ('axis',
'axis,ndmin' or 'axis,ndmin,trans1d') sets the concatenation axis, the minimum number of dimensions and where
the original axes go. Without a traced piece they are the backend's own ``r_``/``c_``. The matrix directives
'r' and 'c' (numpy.matrix results) are not supported on traced pieces.
"""
from __future__ import annotations

import numpy as _np

from .. import backend
from ..core import aval, raw, Tensor
from ._creation import asarray
from ._dispatch import has_tensor, module_of
from ._shapes import astype, concatenate, reshape, transpose

__all__ = ["r_", "c_"]


class AxisConcatenator:
    """Translates slice objects to concatenation along an axis (numpy.lib.index_tricks.AxisConcatenator)."""

    def __init__(self, name, axis=0, ndmin=1, trans1d=-1):
        self.name, self.axis, self.ndmin, self.trans1d = name, axis, ndmin, trans1d

    def __getitem__(self, key):
        items = key if isinstance(key, tuple) else (key,)
        if not has_tensor(items):
            arrays = [v for v in items if hasattr(v, "__array_priority__") or hasattr(v, "dtype")]
            module = module_of(arrays) if arrays else backend.default_module()
            return getattr(module, self.name)[key]
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        xp = module_of([v for v in items if isinstance(v, Tensor)])
        objs, types = [], []
        for k, item in enumerate(items):
            scalar = False
            if isinstance(item, slice):
                start = 0 if item.start is None else item.start
                step = 1 if item.step is None else item.step
                if isinstance(step, (complex, _np.complexfloating)):
                    new = xp.linspace(start, item.stop, num=int(abs(step)))
                else:
                    new = xp.arange(start, item.stop, step)
                if ndmin > 1:
                    new = new.reshape((1,) * (ndmin - 1) + new.shape)
                    if trans1d != -1:
                        new = new.swapaxes(-1, trans1d)
            elif isinstance(item, str):
                if k != 0:
                    raise ValueError("special directives must be the first entry.")
                if item in ("r", "c"):
                    raise NotImplementedError(f"gpuad.numpy.{self.name}: the matrix directive {item!r} is not "
                                              f"supported on traced values")
                try:
                    parts = [int(p) for p in item.split(",")]
                except ValueError:
                    raise ValueError(f"unknown special directive {item!r}") from None
                if len(parts) > 3:
                    raise ValueError(f"unknown special directive {item!r}")
                axis = parts[0]
                if len(parts) > 1:
                    ndmin = parts[1]
                if len(parts) > 2:
                    trans1d = parts[2]
                continue
            elif type(item) in _np.ScalarType:
                scalar = True
                new = item
            else:
                new = asarray(item) if isinstance(item, Tensor) else xp.asarray(raw(item))
                item_ndim = len(aval(new)[0])
                if item_ndim < ndmin:
                    new = reshape(new, (1,) * (ndmin - item_ndim) + aval(new)[0])
                    if trans1d != -1:
                        k2 = ndmin - item_ndim
                        k1 = trans1d + (k2 + 1 if trans1d < 0 else 0)
                        defaxes = list(range(ndmin))
                        new = transpose(new, defaxes[:k1] + defaxes[k2:] + defaxes[k1:k2])
            objs.append(new)
            types.append(item if scalar else aval(new)[1])
        dtype = _np.result_type(*types)
        pieces = []
        for obj in objs:
            if not isinstance(obj, Tensor):
                obj = xp.asarray(obj, dtype=dtype)
                if obj.ndim < ndmin:
                    obj = obj.reshape((1,) * (ndmin - obj.ndim) + obj.shape)
            pieces.append(astype(obj, dtype))
        return concatenate(pieces, axis=axis)

    def __len__(self):
        return 0


r_ = AxisConcatenator("r_", 0)
c_ = AxisConcatenator("c_", -1, ndmin=2, trans1d=0)
