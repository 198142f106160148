"""``gpuad.numpy``: NumPy's functions, recorded when their arguments are traced.

Use it as ``import gpuad.numpy as gnp`` (or ``as np``). When no argument is a gpuad Tensor, every function
hands its arguments to the NumPy (or CuPy) function of the same name, so ``gnp`` is a drop-in for numpy in plain
code and returns plain backend arrays. This module only re-exports the families, one module each:
``_elementwise`` (the rule rows, where, clip, round, ...), ``_reductions`` (sum, max, prod, var, cumsum, ...),
``_shapes`` (reshape, transpose, broadcast_to, concatenate, stack, astype), ``_rearranging`` (split, tile, flip,
pad, sort, take, ...), ``_products`` (matmul, dot, tensordot, einsum, kron), ``_diagonals`` (diagonal, trace,
diag, tril, triu), ``_creation`` (array, asarray, zeros, linspace, ...), ``_nondifferentiable`` (comparisons,
argmax, ...), ``_statistics`` (median, quantile, nan*, cov, ...), ``_calculus`` (cross, gradient, interp,
convolve, trapezoid, polyval), ``_index_tricks`` (r_, c_) and ``linalg``; ``_dispatch`` holds their shared plumbing and ``_indexing`` the getitem and ``.at`` updates.
Importing it gives ``Tensor`` its array behaviour (``_methods``): operators, methods and the NumPy protocols.
"""
from __future__ import annotations

import sys

import numpy as _np

from ..core import Tensor as _Tensor
from . import _methods
from ._calculus import *  # noqa: F401,F403
from ._creation import *  # noqa: F401,F403
from ._diagonals import *  # noqa: F401,F403
from ._elementwise import *  # noqa: F401,F403
from ._index_tricks import *  # noqa: F401,F403
from ._nondifferentiable import *  # noqa: F401,F403
from ._products import *  # noqa: F401,F403
from ._rearranging import *  # noqa: F401,F403
from ._reductions import *  # noqa: F401,F403
from ._shapes import *  # noqa: F401,F403
from ._statistics import *  # noqa: F401,F403
from . import linalg  # noqa: F401
from ._dispatch import traceable  # noqa: F401 (for extensions: NumPy's function on plain arguments)

pi, e, euler_gamma, inf, nan, newaxis = _np.pi, _np.e, _np.euler_gamma, _np.inf, _np.nan, None
dtype, finfo, iinfo, ndarray = _np.dtype, _np.finfo, _np.iinfo, _np.ndarray
# Every scalar type (dtype name) NumPy exports: float64, int8, bool, complex128, intp, generic, floating, ...
globals().update({_n: _v for _n, _v in vars(_np).items() if isinstance(_v, type) and issubclass(_v, _np.generic)
                  and not _n.startswith("_") and _n not in globals()})

# The public surface: what NumPy users call, not the helpers this module imports (PEP 562 keeps dir() clean).
_INTERNAL = {"annotations", "traceable"}
__all__ = sorted(n for n, v in globals().items()
                 if not n.startswith("_") and n not in _INTERNAL and not n.isupper()
                 and (not isinstance(v, type(_np)) or n == "linalg"))
__dir__ = __all__.copy  # PEP 562: dir(gpuad.numpy) lists the public names only


_methods.attach(_Tensor, sys.modules[__name__])
