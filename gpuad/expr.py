"""The tiny expression language of the rule tables.

An elementwise op's row writes its forward value and its partial derivatives as short expressions such as
``"cos(x)"`` or ``"-out / y"``. They are parsed once with Python's ``ast`` and checked against a small grammar
(numbers, names, ``+ - * /``, unary minus, one comparison, and the calls in ``FUNCTIONS``), so that every
expression is at once valid Python over NumPy-like modules and valid CUDA C++. From one parsed ``Expr`` we get:
a Python function evaluated against any NumPy-compatible namespace (``numpy``, ``cupy`` or ``gpuad.numpy`` for
traced higher-order rules), a C++ rendering for the generated kernels, and the set of names it reads (which
tells the tape what an op must save for the backward pass).
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

# Language name -> (name in a NumPy-compatible namespace, C++ template over the rendered arguments).
FUNCTIONS: dict[str, tuple[str, str]] = {
    "sin": ("sin", "sin({0})"),
    "cos": ("cos", "cos({0})"),
    "tan": ("tan", "tan({0})"),
    "exp": ("exp", "exp({0})"),
    "exp2": ("exp2", "exp2({0})"),
    "log": ("log", "log({0})"),
    "log2": ("log2", "log2({0})"),
    "log10": ("log10", "log10({0})"),
    "sqrt": ("sqrt", "sqrt({0})"),
    "cbrt": ("cbrt", "cbrt({0})"),
    "log1p": ("log1p", "log1p({0})"),
    "expm1": ("expm1", "expm1({0})"),
    "sinh": ("sinh", "sinh({0})"),
    "cosh": ("cosh", "cosh({0})"),
    "tanh": ("tanh", "tanh({0})"),
    "arcsin": ("arcsin", "asin({0})"),
    "arccos": ("arccos", "acos({0})"),
    "arctan": ("arctan", "atan({0})"),
    "arcsinh": ("arcsinh", "asinh({0})"),
    "arccosh": ("arccosh", "acosh({0})"),
    "arctanh": ("arctanh", "atanh({0})"),
    "arctan2": ("arctan2", "atan2({0}, {1})"),
    "hypot": ("hypot", "hypot({0}, {1})"),
    "abs": ("abs", "gpuad_abs({0})"),  # the modulus of a complex value
    "sign": ("sign", "gpuad_sign({0})"),  # z / |z| for a complex z (NumPy 2)
    "floor": ("floor", "floor({0})"),
    "ceil": ("ceil", "ceil({0})"),
    "trunc": ("trunc", "trunc({0})"),
    "rint": ("rint", "rint({0})"),
    "pow": ("power", "pow({0}, {1})"),
    "square": ("square", "(({0}) * ({0}))"),
    # NumPy's maximum/minimum/clip propagate NaN (C's fmax/fmin drop it): x != x is true only for NaN.
    "maximum": ("maximum", "((({0}) != ({0}) || ({0}) > ({1})) ? ({0}) : ({1}))"),
    "minimum": ("minimum", "((({0}) != ({0}) || ({0}) < ({1})) ? ({0}) : ({1}))"),
    "fmax": ("fmax", "fmax({0}, {1})"),
    "fmin": ("fmin", "fmin({0}, {1})"),
    "fmod": ("fmod", "fmod({0}, {1})"),
    "copysign": ("copysign", "copysign({0}, {1})"),
    "clip": ("clip", "minimum(maximum({0}, {1}), {2})"),  # expanded below, as NumPy defines it
    "where": ("where", "(gpuad_truth({0}) ? ({1}) : ({2}))"),  # a nonzero condition is true (a complex one too)
    "reciprocal": ("reciprocal", "((R)1 / ({0}))"),
    # NumPy's remainder takes the sign of the divisor (Python's %), unlike C's fmod.
    "remainder": ("remainder", "((fmod({0}, {1}) != (R)0 && ((fmod({0}, {1}) < (R)0) != (({1}) < (R)0))) "
                               "? fmod({0}, {1}) + ({1}) : fmod({0}, {1}))"),
    "floor_divide": ("floor_divide", "floor(({0}) / ({1}))"),
    # nan -> 0, +-inf -> the largest finite value with that sign (NumPy's defaults), each part of a complex value
    "nan_to_num": ("nan_to_num", "gpuad_nan_to_num({0})"),
    # On real values real and conj are the identity and imag is zero (kernels/prelude.h), on complex ones
    # kernels/prelude_complex.h
    "real": ("real", "gpuad_real({0})"),
    "imag": ("imag", "gpuad_imag({0})"),
    "conj": ("conjugate", "gpuad_conj({0})"),
}

FUNCTIONS["clip"] = ("clip", FUNCTIONS["minimum"][1].format(FUNCTIONS["maximum"][1].format("{0}", "{1}"), "{2}"))

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


class ExprError(ValueError):
    """An expression in a rule row falls outside the language."""


@dataclass(frozen=True)
class Expr:
    """A parsed, validated expression. ``names`` are the variables it reads, in order of first use."""

    source: str
    tree: ast.expr = field(repr=False, compare=False)
    names: tuple[str, ...]

    @property
    def constant(self) -> float | None:
        """The value when the expression is a plain number (``"1"``, ``"-1"``, ``"0"``), else None."""
        node = self.tree
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if isinstance(node, ast.Constant):
            return sign * node.value
        return None

    def python(self) -> str:
        """Python source over a NumPy-compatible namespace (language names mapped to NumPy names)."""
        return _render(self.tree, _python_call, str)

    def show(self, rename: dict[str, str]) -> str:
        """Readable source with names replaced (for printing the tape's adjoint program)."""
        class Rename(ast.NodeTransformer):
            def visit_Name(self, node):
                return ast.Name(id=rename.get(node.id, node.id)) if node.id not in FUNCTIONS else node
        return ast.unparse(Rename().visit(copy.deepcopy(self.tree)))

    def cuda(self, rename: dict[str, str] | None = None) -> str:
        """C++ source valid for nvcc and g++; names can be renamed. A kernel defines ``R``, its real type
        (constants are ``(R)0.5``), and where complex values occur ``C``, its complex type (``0.5j`` is
        ``C((R)0.0, (R)0.5)``); which overload a function call takes follows the C++ types of its arguments."""
        rename = rename or {}
        return _render(self.tree, _c_call, lambda n: rename.get(n, n), c_constants=True)

    def compile(self, arg_names: tuple[str, ...], namespace) -> callable:
        """A Python function of ``arg_names`` evaluating this expression with ``namespace``'s functions."""
        fn_globals = {py: getattr(namespace, py) for name, (py, _) in FUNCTIONS.items() if _uses(self.tree, name)}
        return eval(f"lambda {', '.join(arg_names)}: {self.python()}", fn_globals)  # noqa: S307 (validated AST)


def _uses(tree, fname):
    return any(isinstance(n, ast.Call) and n.func.id == fname for n in ast.walk(tree))


def parse(source: str) -> Expr:
    """Parse and validate ``source``; raise ExprError naming the offending construct."""
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as e:
        raise ExprError(f"rule expression {source!r} is not valid Python: {e.msg}") from None
    function_nodes = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if id(node) not in function_nodes and node.id not in names:
                names.append(node.id)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                raise ExprError(f"rule expression {source!r} calls {ast.unparse(node.func)}, which the kernel "
                                f"language lacks; add it to gpuad.expr.FUNCTIONS")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, complex)) or isinstance(node.value, bool):
                raise ExprError(f"rule expression {source!r} has a non-numeric constant {node.value!r}")
        elif isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
            raise ExprError(f"rule expression {source!r} uses an operator outside + - * /")
        elif isinstance(node, ast.Compare) and (len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE):
            raise ExprError(f"rule expression {source!r} must use a single comparison")
        elif isinstance(node, ast.UnaryOp) and not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ExprError(f"rule expression {source!r} uses a unary operator other than -")
        elif not isinstance(node, (ast.Name, ast.Call, ast.Constant, ast.BinOp, ast.Compare, ast.UnaryOp,
                                   ast.Load, ast.operator, ast.cmpop, ast.unaryop)):
            raise ExprError(f"rule expression {source!r} uses {type(node).__name__}, outside the language")
    return Expr(source, tree, tuple(names))


def _python_call(fname, args):
    return f"{FUNCTIONS[fname][0]}({', '.join(args)})"


def _c_call(fname, args):
    return FUNCTIONS[fname][1].format(*args)


def _render(node, call, name, c_constants=False):
    def r(n):
        if isinstance(n, ast.Name):
            return name(n.id)
        if isinstance(n, ast.Constant):
            if not c_constants:
                return repr(n.value)
            if isinstance(n.value, complex):
                return f"C((R){n.value.real!r}, (R){n.value.imag!r})"
            return f"(R){n.value!r}"
        if isinstance(n, ast.UnaryOp):
            return f"({'-' if isinstance(n.op, ast.USub) else '+'}{r(n.operand)})"
        if isinstance(n, ast.BinOp):
            return f"({r(n.left)} {_BINARY[type(n.op)]} {r(n.right)})"
        if isinstance(n, ast.Compare):
            return f"({r(n.left)} {_COMPARE[type(n.ops[0])]} {r(n.comparators[0])})"
        if isinstance(n, ast.Call):
            return call(n.func.id, [r(a) for a in n.args])
        raise ExprError(f"cannot render {ast.dump(n)}")
    text = r(node)
    return text[1:-1] if text.startswith("(") and _balanced(text[1:-1]) else text


def _balanced(s):
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0
