"""The rule tables, one module per op family: ``elementwise`` (expression rows), ``structural`` (linear,
structural and reduction primitives) and ``linalg`` (einsum and the numpy.linalg decompositions)."""
from . import elementwise, linalg, structural  # noqa: F401
