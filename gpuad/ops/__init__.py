"""The rule tables, one module per op family: ``elementwise`` (expression rows), ``structural`` (linear,
structural and reduction primitives), ``reductions`` (the scans cumsum and cumprod) and ``linalg`` (einsum and
the numpy.linalg decompositions)."""
from . import elementwise, linalg, reductions, structural  # noqa: F401
