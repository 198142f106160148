"""Rule table for elementwise ops: one row per op.

A row is ``Elementwise(name, forward, partials, domain=..., symbol=...)``: the forward expression and one
partial-derivative expression per argument, over the argument names x, y, z and the result ``out``. From the row
alone the engine derives the NumPy/CuPy evaluation, the JVP, the VJP, what the tape saves, the fused CUDA kernel
and the op's test case (``domain`` keeps the tests where the op is differentiable). A partial of None means the
argument carries no derivative. Conventions at kinks: abs'(0) = 0, and ties in maximum/minimum split evenly.
"""
from ..rules import Elementwise

POSITIVE = (0.5, 2.0)
UNIT = (-0.9, 0.9)

# ---- arithmetic
ADD = Elementwise("add", "x + y", ("1", "1"), symbol="+")
SUBTRACT = Elementwise("subtract", "x - y", ("1", "-1"), symbol="-")
MULTIPLY = Elementwise("multiply", "x * y", ("y", "x"), symbol="*")
DIVIDE = Elementwise("divide", "x / y", ("1 / y", "-out / y"), domain=(None, "nonzero"), symbol="/")
NEGATIVE = Elementwise("negative", "-x", ("-1",), symbol="-")
POWER = Elementwise("power", "pow(x, y)",
                    ("y * pow(x, y - 1)", "where(x > 0, out * log(where(x > 0, x, 1)), 0)"),
                    domain=(POSITIVE, (-2.0, 2.0)))
SQUARE = Elementwise("square", "x * x", ("2 * x",))
SQRT = Elementwise("sqrt", "sqrt(x)", ("0.5 / out",), domain=(POSITIVE,))

# ---- exponentials and logarithms
EXP = Elementwise("exp", "exp(x)", ("out",))
LOG = Elementwise("log", "log(x)", ("1 / x",), domain=(POSITIVE,))
LOG1P = Elementwise("log1p", "log1p(x)", ("1 / (1 + x)",), domain=(POSITIVE,))
EXPM1 = Elementwise("expm1", "expm1(x)", ("out + 1",))

# ---- trigonometric and hyperbolic
SIN = Elementwise("sin", "sin(x)", ("cos(x)",))
COS = Elementwise("cos", "cos(x)", ("-sin(x)",))
TAN = Elementwise("tan", "tan(x)", ("1 + out * out",), domain=(UNIT,))
SINH = Elementwise("sinh", "sinh(x)", ("cosh(x)",))
COSH = Elementwise("cosh", "cosh(x)", ("sinh(x)",))
TANH = Elementwise("tanh", "tanh(x)", ("1 - out * out",))
ARCSIN = Elementwise("arcsin", "arcsin(x)", ("1 / sqrt(1 - x * x)",), domain=(UNIT,))
ARCCOS = Elementwise("arccos", "arccos(x)", ("-1 / sqrt(1 - x * x)",), domain=(UNIT,))
ARCTAN = Elementwise("arctan", "arctan(x)", ("1 / (1 + x * x)",))

# ---- piecewise (conventions at the kinks: derivative 0 at abs(0), ties split evenly)
ABSOLUTE = Elementwise("absolute", "abs(x)", ("sign(x)",), domain=("nonzero",))
MAXIMUM = Elementwise("maximum", "maximum(x, y)",
                      ("where(x > y, 1, where(x == y, 0.5, 0))", "where(y > x, 1, where(x == y, 0.5, 0))"))
MINIMUM = Elementwise("minimum", "minimum(x, y)",
                      ("where(x < y, 1, where(x == y, 0.5, 0))", "where(y < x, 1, where(x == y, 0.5, 0))"))
WHERE = Elementwise("where", "where(x, y, z)", (None, "x", "1 - x"), domain=("bool", None, None))
CLIP = Elementwise("clip", "clip(x, y, z)", ("(x >= y) * (x <= z)", "x < y", "x > z"),
                   domain=((-2.0, 2.0), (-1.0, -0.5), (0.5, 1.0)))

# ---- integer-valued: zero derivative everywhere it exists
SIGN = Elementwise("sign", "sign(x)", (None,), domain=("nonzero",))
