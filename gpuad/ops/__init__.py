"""The rule tables, one module per op family: ``elementwise`` (expression rows), ``structural`` (linear
structural primitives: reshape, transpose, broadcast, getitem, scatter, concatenate, matmul), ``reductions``
(sum, max, min, prod), ``scans`` (cumsum, cumprod) and ``linalg`` (einsum and the numpy.linalg decompositions)."""
from . import elementwise, linalg, reductions, scans, structural  # noqa: F401
