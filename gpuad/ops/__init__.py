"""The rule tables, one module per op family: ``elementwise`` (expression rows), ``structural`` (linear,
structural and reduction primitives) and ``reductions`` (the scans cumsum and cumprod)."""
from . import elementwise, reductions, structural  # noqa: F401
