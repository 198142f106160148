"""Rule table for elementwise ops: one row per op.

A row is ``Elementwise(name, forward, partials, domain=..., symbol=...)``: the forward expression and one
partial-derivative expression per argument, over the argument names x, y, z and the result ``out``. From the row
alone the engine derives the NumPy/CuPy evaluation, the JVP, the VJP, what the tape saves, the fused CUDA kernel
and the op's test case (``domain`` keeps the tests where the op is differentiable). A partial of None means the
argument carries no derivative. Conventions at kinks: abs'(0) = 0; ties in maximum/minimum/fmax/fmin split
evenly; integer-valued ops (floor, ceil, trunc, rint, sign, floor_divide) have derivative 0; nan_to_num passes
derivative 1 where its input is finite and 0 where it replaced a nan or inf. Inputs are real: complex values are
outside these rows.
"""
from ..rules import Elementwise

POSITIVE = (0.5, 2.0)
UNIT = (-0.9, 0.9)
LN2 = "0.6931471805599453"
LOG2E = "1.4426950408889634"
PI = "3.141592653589793"

# ---- arithmetic
ADD = Elementwise("add", "x + y", ("1", "1"), symbol="+")
SUBTRACT = Elementwise("subtract", "x - y", ("1", "-1"), symbol="-")
MULTIPLY = Elementwise("multiply", "x * y", ("y", "x"), symbol="*")
DIVIDE = Elementwise("divide", "x / y", ("1 / y", "-out / y"), domain=(None, "nonzero"), symbol="/")
NEGATIVE = Elementwise("negative", "-x", ("-1",), symbol="-")
# d/dx is exactly 0 where y == 0 and d/dy exactly 0 at x == 0 (JAX's convention), with the unused branch made
# harmless (x -> 1) so that every order stays finite: the n-th derivative of x ** k at 0 is exact for all n.
# For x < 0, log(x) is NaN: (-2.) ** y has no real derivative in y.
POWER = Elementwise("power", "pow(x, y)",
                    ("where(y == 0, 0, y * pow(where(y == 0, 1, x), y - 1))",
                     "where(x == 0, 0, out * log(where(x == 0, 1, x)))"),
                    domain=(POSITIVE, (-2.0, 2.0)))
SQUARE = Elementwise("square", "x * x", ("2 * x",))
SQRT = Elementwise("sqrt", "sqrt(x)", ("0.5 / out",), domain=(POSITIVE,))
CBRT = Elementwise("cbrt", "cbrt(x)", ("1 / (3 * out * out)",), domain=("nonzero",))
RECIPROCAL = Elementwise("reciprocal", "reciprocal(x)", ("-out * out",), domain=("nonzero",))
HYPOT = Elementwise("hypot", "hypot(x, y)", ("x / out", "y / out"), domain=("nonzero", "nonzero"))
# remainder = x - floor(x / y) * y and fmod = x - trunc(x / y) * y, with the quotient locally constant.
REMAINDER = Elementwise("remainder", "remainder(x, y)", ("1", "-floor_divide(x, y)"), domain=(None, "nonzero"),
                        symbol="%")
FMOD = Elementwise("fmod", "fmod(x, y)", ("1", "-trunc(x / y)"), domain=(None, "nonzero"))

# ---- exponentials and logarithms
EXP = Elementwise("exp", "exp(x)", ("out",))
LOG = Elementwise("log", "log(x)", ("1 / x",), domain=(POSITIVE,))
LOG1P = Elementwise("log1p", "log1p(x)", ("1 / (1 + x)",), domain=(POSITIVE,))
EXPM1 = Elementwise("expm1", "expm1(x)", ("out + 1",))
EXP2 = Elementwise("exp2", "exp2(x)", (f"out * {LN2}",))
LOG2 = Elementwise("log2", "log2(x)", (f"{LOG2E} / x",), domain=(POSITIVE,))
LOG10 = Elementwise("log10", "log10(x)", ("0.4342944819032518 / x",), domain=(POSITIVE,))
# Stable forms: the larger argument plus log1p of a number in (0, 1]. Equal arguments are handled apart, as
# NumPy does, and never subtracted (inf - inf would warn). Each partial is a softmax weight: ties split evenly.
_GAP = "minimum(x, y) - where(x == y, 0, maximum(x, y))"  # -|x - y|
LOGADDEXP = Elementwise("logaddexp", f"where(x == y, x + {LN2}, maximum(x, y) + log1p(exp({_GAP})))",
                        ("exp(x - out)", "exp(y - out)"))
LOGADDEXP2 = Elementwise("logaddexp2", f"where(x == y, x + 1, maximum(x, y) + log1p(exp2({_GAP})) * {LOG2E})",
                         ("exp2(x - out)", "exp2(y - out)"))

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
ARCTAN2 = Elementwise("arctan2", "arctan2(x, y)", ("y / (x * x + y * y)", "-x / (x * x + y * y)"),
                      domain=("nonzero", None))  # x stays off the branch cut (x = 0, y < 0)
ARCSINH = Elementwise("arcsinh", "arcsinh(x)", ("1 / sqrt(x * x + 1)",))
ARCCOSH = Elementwise("arccosh", "arccosh(x)", ("1 / sqrt(x * x - 1)",), domain=((1.2, 3.0),))
ARCTANH = Elementwise("arctanh", "arctanh(x)", ("1 / (1 - x * x)",), domain=(UNIT,))
DEG2RAD = Elementwise("deg2rad", "x * 0.017453292519943295", ("0.017453292519943295",))
RAD2DEG = Elementwise("rad2deg", "x * 57.29577951308232", ("57.29577951308232",))
# sin(pi x) / (pi x), 1 at 0, computed as NumPy does. Its derivative (cos(pi x) - sinc(x)) / x cancels near 0,
# so there it is its Taylor series (Horner in x^2, 7 terms: exact to rounding for |x| < 0.1, and 0 at 0 with
# the right higher derivatives).
_SINC_SERIES = ("-3.289868133696453", "3.246969701133414", "-1.144510944732505", "0.20918278254123832",
                "-0.023460810354558225", "0.001781145516372851", "-9.766223126318928e-05")
_SINC_SLOPE_NEAR_0 = "x * (" + " + x * x * (".join(_SINC_SERIES) + ")" * len(_SINC_SERIES)
SINC = Elementwise("sinc", f"where(x == 0, 1, sin({PI} * x) / ({PI} * where(x == 0, 1, x)))",
                   (f"where(abs(x) < 0.1, {_SINC_SLOPE_NEAR_0}, (cos({PI} * x) - out) / where(abs(x) < 0.1, 1, x))",))

# ---- piecewise (conventions at the kinks: derivative 0 at abs(0), ties split evenly)
ABSOLUTE = Elementwise("absolute", "abs(x)", ("sign(x)",), domain=("nonzero",))
MAXIMUM = Elementwise("maximum", "maximum(x, y)",
                      ("where(x > y, 1, where(x == y, 0.5, 0))", "where(y > x, 1, where(x == y, 0.5, 0))"))
MINIMUM = Elementwise("minimum", "minimum(x, y)",
                      ("where(x < y, 1, where(x == y, 0.5, 0))", "where(y < x, 1, where(x == y, 0.5, 0))"))
WHERE = Elementwise("where", "where(x, y, z)", (None, "x", "1 - x"), domain=("bool", None, None))
# fmax/fmin ignore a nan argument: the other one gets the whole derivative.
FMAX = Elementwise("fmax", "fmax(x, y)",
                   ("where(x > y, 1, where(x == y, 0.5, where(y != y, 1, 0)))",
                    "where(x > y, 0, where(x == y, 0.5, where(y != y, 0, 1)))"))
FMIN = Elementwise("fmin", "fmin(x, y)",
                   ("where(x < y, 1, where(x == y, 0.5, where(y != y, 1, 0)))",
                    "where(x < y, 0, where(x == y, 0.5, where(y != y, 0, 1)))"))
# The output equals the input exactly where the input is finite (no arithmetic on inf: no warnings).
NAN_TO_NUM = Elementwise("nan_to_num", "nan_to_num(x)", ("out == x",))
CLIP = Elementwise("clip", "clip(x, y, z)", ("(x >= y) * (x <= z)", "x < y", "x > z"),
                   domain=((-2.0, 2.0), (-1.0, -0.5), (0.5, 1.0)))

# ---- integer-valued: zero derivative everywhere it exists
SIGN = Elementwise("sign", "sign(x)", (None,), domain=("nonzero",))
FLOOR = Elementwise("floor", "floor(x)", (None,))
CEIL = Elementwise("ceil", "ceil(x)", (None,))
TRUNC = Elementwise("trunc", "trunc(x)", (None,))
RINT = Elementwise("rint", "rint(x)", (None,))
FLOOR_DIVIDE = Elementwise("floor_divide", "floor_divide(x, y)", (None, None), domain=(None, "nonzero"),
                           symbol="//")

# ---- complex parts of real inputs
REAL = Elementwise("real", "real(x)", ("1",))
IMAG = Elementwise("imag", "imag(x)", (None,))
CONJUGATE = Elementwise("conjugate", "conj(x)", ("1",))
