"""The rule tables, one module per op family: ``elementwise`` (the elementwise kind and its expression rows),
``linear`` (reshape, transpose, broadcast_to and its transpose sum, convert, getitem, scatter_add, concatenate,
matmul), ``reductions`` (max, min, prod), ``scans`` (cumsum, cumprod) and ``linalg`` (einsum and the
numpy.linalg decompositions)."""
from . import elementwise, linalg, linear, reductions, scans  # noqa: F401
