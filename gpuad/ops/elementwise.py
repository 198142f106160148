"""The elementwise kind and its rule table: one row per op.

A row is ``Elementwise(name, forward, partials, domain=..., symbol=...)``: the forward expression and one
partial-derivative expression per argument, over the argument names x, y, z and the result ``out``, in the
language of ``gpuad.expr``. From the row alone the engine derives the NumPy/CuPy evaluation, the JVP (partial
times tangent, summed), the VJP (cotangent times partial, summed over broadcast axes), what the tape saves, the
fused CUDA kernel (``gpuad.fusion``) and the op's test case (``domain`` keeps the tests where the op is
differentiable). A partial of None means the argument carries no derivative. On traced values the same
expressions run over ``TRACED``, the rows themselves as a namespace of traced functions, so the rules are
differentiable in turn. Conventions at kinks: abs'(0) = 0; ties in maximum/minimum/fmax/fmin split evenly;
integer-valued ops (floor, ceil, trunc, rint, sign, floor_divide) have derivative 0; nan_to_num passes
derivative 1 where its input is finite and 0 where it replaced a nan or inf.

Complex values follow JAX's convention: the JVP is the R-linear map z' -> A z' + B conj(z') with A = d out / d z and
B = d out / d conj(z) (Wirtinger derivatives), and the VJP is its transpose under the real pairing
<a, b> = Re(sum(a * b)), so ct -> ct * A + conj(ct * B) (no conjugation for holomorphic ops). A holomorphic row
(B = 0, A = its real partial) needs nothing more: its real partial, evaluated on complex values, is A. The
non-holomorphic rows (abs, sign, real, imag, conj) give ``wirtinger``: one (A, B) pair per argument, used when
that argument is complex. A cotangent flowing into a real argument keeps its real part (``sum_to`` casts it).
"""
from __future__ import annotations

import numpy

from .. import backend, expr
from ..core import BOX_TYPES, aval, is_complex_dtype, is_float_dtype, raw
from ..rules import ARG_NAMES, Primitive
from .linear import BROADCAST_TO, CONVERT, sum_to

_rows: dict[str, "Elementwise"] = {}


class Elementwise(Primitive):
    """An elementwise op from its row. ``partials[k]`` is d out / d arg_k as an expression over the argument
    names (x, y, z) and ``out``; None marks an argument that carries no derivative (a condition, an integer
    result). ``domain`` tells the tests where the op is differentiable: one (low, high) interval per argument,
    or "nonzero" for |value| in (0.5, 2) with either sign. The tape groups these entries into fused regions
    (see ``gpuad.fusion.regions``); ``vjp`` is the per-op rule the traced backward pass uses.
    """

    def __init__(self, name, forward, partials, domain=None, symbol=None, wirtinger=None):
        super().__init__(name)
        _rows[name] = self
        self.arity = len(partials)
        self.args = ARG_NAMES[: self.arity]
        self.forward = expr.parse(forward)
        self.partials = tuple(None if p is None else expr.parse(p) for p in partials)
        # (A, B) per argument for complex arguments of non-holomorphic rows (see the module docstring)
        self.wirtinger = None if wirtinger is None else tuple(
            None if pair is None else tuple(expr.parse(e) for e in pair) for pair in wirtinger)
        self.nondiff = tuple(k for k, p in enumerate(self.partials) if p is None)
        self.domain = domain
        self.symbol = symbol  # infix operator for printing, e.g. "*"
        # Each partial as a constant (0, 1, -1: no multiply needed) or None when it is an expression.
        self.partial_constants = tuple(0 if p is None else p.constant for p in self.partials)
        used = {n for p in self.partials if p is not None for n in p.names}
        used.update(n for pair in self.wirtinger or () if pair for e in pair for n in e.names)
        self.saves = tuple(n for n in (*self.args, "out") if n in used)
        self.save = self._fast_save()
        for e in (self.forward, *filter(None, self.partials),
                  *(e for pair in self.wirtinger or () if pair for e in pair)):
            stray = set(e.names) - {*self.args, "out"}
            if stray:
                raise expr.ExprError(f"{name}: expression {e.source!r} reads unknown names {sorted(stray)}")
        self._compiled: dict[tuple, object] = {}
        self._forward: dict[object, object] = {}  # the forward expression compiled, by namespace (impl's one lookup)
        # NumPy's ufunc of this name has no complex loop (floor, arctan2, deg2rad, ...): refuse complex values as
        # NumPy does, even where the row's forward expression would evaluate on them.
        loops = getattr(getattr(numpy, name, None), "types", None)
        self.real_only = loops is not None and not any(c in t.split("->")[0] for t in loops for c in "FDG")

    def function(self, which, namespace, half=None):
        """Expression ``which`` (-1: forward, k: partial k; with ``half`` 0 or 1, the Wirtinger A or B of
        argument k) compiled against a NumPy-like namespace."""
        key = (which, namespace, half)
        fn = self._compiled.get(key)
        if fn is None:
            e = self.forward if which < 0 else self.partials[which] if half is None else self.wirtinger[which][half]
            names = self.args if which < 0 else self.saves
            fn = self._compiled[key] = e.compile(names, namespace)
        return fn

    def is_wirtinger(self, k, dtype):
        """Argument k, of ``dtype``, takes the Wirtinger pair instead of the real partial."""
        return (self.wirtinger is not None and self.wirtinger[k] is not None and dtype is not None
                and dtype.kind == "c")

    def _wirtinger_term(self, k, saved, namespace, value, transpose):
        """A z' + B conj(z') (``transpose`` False: a JVP term) or ct A + conj(ct B) (True: a VJP term)."""
        a, b = self.wirtinger[k]

        def times(v, e, half):
            return v if e.constant == 1 else v * self.function(k, namespace, half)(*saved)
        total = None if a.constant == 0 else times(value, a, 0)
        if b.constant != 0:
            term = namespace.conj(times(value, b, 1)) if transpose else times(namespace.conj(value), b, 1)
            total = term if total is None else total + term
        return total

    def impl(self, *args):
        if self.real_only and any(getattr(a, "dtype", None) is not None and a.dtype.kind == "c" for a in args):
            raise TypeError(f"{self.name} is not defined for complex values (as in NumPy)")
        xp = backend.array_module(*args)
        fn = self._forward.get(xp)
        if fn is None:
            fn = self._forward[xp] = self.function(-1, backend.namespace(xp))
        out = fn(*args)
        # Python evaluates complex * numpy.float64 (a float subclass) itself, to a Python complex: without a dtype
        # it would look like a constant to the traces. NumPy's result is a complex128 array.
        return xp.asarray(out) if type(out) is complex else out

    def jvp(self, primals, tangents, out, params):
        saved = _scalars_as_arrays(self.save(primals, out), out)
        for v in (*saved, *tangents):  # (inlined: this runs once per op in forward mode)
            if type(v) in BOX_TYPES:
                namespace = TRACED
                break
        else:
            namespace = backend.namespace(backend.array_module(*saved, *tangents))
        total = None
        for k, t in enumerate(tangents):
            if t is None:
                continue
            if self.wirtinger is not None and self.is_wirtinger(k, aval(primals[k])[1]):
                term = self._wirtinger_term(k, saved, namespace, t, False)
                if term is None:
                    continue
            else:
                c = self.partial_constants[k]
                if c == 0:
                    continue
                term = t if c == 1 else -t if c == -1 else t * self.function(k, namespace)(*saved)
            total = term if total is None else total + term
        if total is None:
            return None
        if namespace is not TRACED and total.shape == out.shape and total.dtype == out.dtype:
            return total  # the common case on arrays, without the general checks below
        tshape, tdtype = aval(total)
        oshape, odtype = aval(out)
        if tshape != oshape:
            total = BROADCAST_TO.bind(total, shape=oshape)
        if tdtype is not None and tdtype != odtype and is_float_dtype(odtype):
            # a partial over a boolean or integer argument (where's 1 - x) must not widen the tangent: float32
            # and float16 tangents stay in the output's dtype
            total = CONVERT.bind(total, dtype=odtype)
        return total

    def vjp(self, ct, saved, params, avals, needed, fast):
        namespace = backend.namespace(backend.array_module(ct)) if fast else TRACED
        saved = _scalars_as_arrays(saved, ct)
        result = []
        for k in range(self.arity):
            if needed[k] and self.wirtinger is not None and self.is_wirtinger(k, avals[k][1]):
                contrib = self._wirtinger_term(k, saved, namespace, ct, True)
                result.append(None if contrib is None else sum_to(contrib, *avals[k]))
                continue
            c = self.partial_constants[k]
            if not needed[k] or c == 0:
                result.append(None)
                continue
            contrib = ct if c == 1 else -ct if c == -1 else ct * self.function(k, namespace)(*saved)
            result.append(sum_to(contrib, *avals[k]))
        return result

    def format(self, args, params):
        if self.symbol and self.arity == 2:
            return f"{args[0]} {self.symbol} {args[1]}"
        if self.symbol and self.arity == 1:
            return f"{self.symbol}{args[0]}"
        return f"{self.name}({', '.join(args)})"

    def format_adjoint(self, k, ct_name, args, out_name, params, dtype=None):
        """Argument k's adjoint term as text (None for a zero partial); ``dtype`` (the argument's) picks the
        Wirtinger form ct * A + conj(ct * B) for a complex argument of a non-holomorphic row."""
        rename = dict(zip(self.args, args), out=out_name)
        if self.is_wirtinger(k, dtype):
            a, b = (self._times(ct_name, e, rename) for e in self.wirtinger[k])
            terms = ([a] if a else []) + ([f"conj({b})"] if b else [])
            return " + ".join(terms) or None
        return self._times(ct_name, self.partials[k], rename)

    @staticmethod
    def _times(ct_name, p, rename):
        if p is None or p.constant == 0:
            return None
        if p.constant == 1:
            return ct_name
        if p.constant == -1:
            return f"-{ct_name}"
        text = p.show(rename)
        return f"{ct_name} * {text if p.tree.__class__.__name__ in ('Name', 'Call', 'Constant') else f'({text})'}"


def _scalars_as_arrays(saved, like):
    """Python-scalar arguments as 0-d arrays of ``like``'s dtype (the dtype they took part in), so a partial
    such as ``1 / y`` gives inf at y = 0, as NumPy does, instead of raising ZeroDivisionError."""
    if not any(type(v) in backend.PYTHON_SCALARS for v in saved):
        return saved
    value = raw(like)
    module = backend.array_module(value)
    return tuple(module.asarray(v, dtype=value.dtype) if type(v) in backend.PYTHON_SCALARS else v for v in saved)


class _TracedRows:
    """The rows as a NumPy-like namespace of traced functions (``TRACED.cos(x)`` binds the cos row): what the
    rows' expressions are evaluated over when their inputs are traced."""

    _ALIASES = {"abs": "absolute", "conj": "conjugate"}

    def __getattr__(self, name):
        row = _rows.get(self._ALIASES.get(name, name))
        if row is None:
            raise AttributeError(f"no elementwise row named {name!r}")
        fn = row.bind
        setattr(self, name, fn)
        return fn


TRACED = _TracedRows()


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
# complex z: |z|' = Re(conj(z) z') / |z|, so A = conj(z) / 2|z| and B = z / 2|z| (0 at z = 0, as for reals)
_HALF_OVER_ABS = "where(x == 0, 0, 0.5 / where(x == 0, 1, abs(x)))"
ABSOLUTE = Elementwise("absolute", "abs(x)", ("sign(x)",), domain=("nonzero",),
                       wirtinger=((f"conj(x) * {_HALF_OVER_ABS}", f"x * {_HALF_OVER_ABS}"),))
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
# |x| with the sign of y (signed zeros and nan signs included): d/dx = sign(x) * sign of y (0 at x = 0, as abs);
# the sign of y is piecewise constant.
COPYSIGN = Elementwise("copysign", "copysign(x, y)", ("sign(x) * copysign(1, y)", None), domain=("nonzero", None))
# The step function: 0 for x < 0, y at x == 0, 1 for x > 0 (nan stays nan). Only the value at 0 depends on y.
HEAVISIDE = Elementwise("heaviside", "where(x == 0, y, where(x < 0, 0, where(x > 0, 1, x)))", (None, "x == 0"))
# (On CuPy the rows' namespace evaluates clip as NumPy defines it, minimum(maximum(x, y), z): CuPy's clip kernel
# has no complex loop and ignores a NaN bound; see backend.namespace.)
CLIP = Elementwise("clip", "clip(x, y, z)", ("(x >= y) * (x <= z)", "x < y", "x > z"),
                   domain=((-2.0, 2.0), (-1.0, -0.5), (0.5, 1.0)))

# ---- integer-valued: zero derivative everywhere it exists
# Real sign is piecewise constant; complex sign(z) = z / |z| is not: A = 1 / 2|z|, B = -z^2 / 2|z|^3.
SIGN = Elementwise("sign", "sign(x)", ("0",), domain=("nonzero",),
                   wirtinger=((_HALF_OVER_ABS, f"-x * x * {_HALF_OVER_ABS} / where(x == 0, 1, x * conj(x))"),))
FLOOR = Elementwise("floor", "floor(x)", (None,))
CEIL = Elementwise("ceil", "ceil(x)", (None,))
TRUNC = Elementwise("trunc", "trunc(x)", (None,))
RINT = Elementwise("rint", "rint(x)", (None,))
FLOOR_DIVIDE = Elementwise("floor_divide", "floor_divide(x, y)", (None, None), domain=(None, "nonzero"),
                           symbol="//")

# ---- complex parts: on real inputs the identity, zero and the identity; on complex ones R-linear maps
# Re z = (z + conj z) / 2, Im z = (z - conj z) / 2i, conj z.
REAL = Elementwise("real", "real(x)", ("1",), wirtinger=(("0.5", "0.5"),))
IMAG = Elementwise("imag", "imag(x)", ("0",), wirtinger=(("-0.5j", "0.5j"),))
CONJUGATE = Elementwise("conjugate", "conj(x)", ("1",), wirtinger=(("0", "1"),))


def is_complex(x) -> bool:
    """Whether ``x`` (a Tensor, an array or a Python number) is complex."""
    return isinstance(x, complex) or is_complex_dtype(aval(x)[1])


def conj_if_complex(x):
    """conj(x) for complex ``x``; real ``x`` itself (nothing recorded, so real code pays nothing)."""
    return CONJUGATE.bind(x) if is_complex(x) else x


def real_if_complex(x):
    """Re(x), a real array, for complex ``x``; real ``x`` itself (nothing recorded)."""
    return REAL.bind(x) if is_complex(x) else x
