"""The rule tables, one module per op family: ``elementwise`` (expression rows) and ``structural``
(linear, structural and reduction primitives)."""
from . import elementwise, structural  # noqa: F401
