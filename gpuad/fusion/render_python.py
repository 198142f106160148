"""The Python rendering of a region's adjoint program, for NumPy (and any NumPy-like namespace).

``python_source(region)`` prints the composed program (``program.Program``) as a Python function over the
namespace's functions: each row expression becomes ufunc calls, written into the function's own temporaries
with ``out=`` where the result has the region's shape and dtype, and cotangents are accumulated in place
(``+=``, or ``-=`` for a partial of -1) into arrays the function owns, an owned buffer handed on at its last
read instead of copied. Four rewrites cut array passes, each a
pass over memory on the CPU: a cotangent known to be 1 everywhere (``Region.unit_seeds``, the seed of a gradient
after a ``sum``) is the literal 1, so the products with it vanish (the constant adjoints it makes are folded
too); a term that several arguments of one node add identically into the same cotangent (both partials of
``x * x``) is computed once and scaled; values the tape kept (``Region.given``) are read, not recomputed;
scalar factors are folded: a product or negation whose operands carry constants (literals, the region's 0-d
constants ``c*``, a folded unit seed) is held as a scaled value, one scalar (the constants multiplied together,
once, as scalars) times an array, through adjoint locals, and the scale is applied in one pass only where an
operation other than a product needs the value (``-=`` takes a scale of -1), or to a returned cotangent, in place
when this function made its array and no other result holds it: ``-(2 * v)`` is one pass, ``-(c * (2 * v)) * (2 *
x)`` two. Folding reassociates products by constants (within rounding), and is not done where it would change a
result's dtype (NumPy's promotion of the operands as written is asked first). The
result dtype of each operation is asked of NumPy (the operation applied to empty arrays of the operands' dtypes,
and to the literal constants themselves), not re-derived.
Which names to ``del`` after their last use comes from the program's statements (``Program.last_reads``) and
from the temporaries each emitted line reads, recorded as the lines are written. ``python_function`` compiles
the source against a namespace, cached per region.
"""
from __future__ import annotations

import ast
from functools import lru_cache

import numpy  # dtype bookkeeping: the rendering asks NumPy for result dtypes

from .. import expr
from .program import Region, describe, local, program

_UFUNC_OPS = {ast.Add: ("add", "+"), ast.Sub: ("subtract", "-"), ast.Mult: ("multiply", "*"),
              ast.Div: ("divide", "/")}
_COMPARE = {ast.Lt: ("less", "<"), ast.LtE: ("less_equal", "<="), ast.Gt: ("greater", ">"),
            ast.GtE: ("greater_equal", ">="), ast.Eq: ("equal", "=="), ast.NotEq: ("not_equal", "!=")}
_FRESH_CALLS = {"where", "clip", "nan_to_num"}  # non-ufuncs that always return a new array


class _Val:
    """A rendered subexpression: its text, whether it has the region's full shape, whether it is a temporary
    this function owns (so it may be overwritten with out=), whether it is a constant (a literal or a Python
    scalar argument), its temporary's name (None for anything else), and ``probe``: what NumPy's type
    promotion sees of it, an empty array of its dtype, or the literal itself (a Python scalar is weak)."""

    __slots__ = ("text", "full", "fresh", "const", "temp", "probe", "scale", "base")

    def __init__(self, text, full, fresh, probe, const=False, temp=None, scale=None, base=None):
        self.text, self.full, self.fresh, self.probe, self.const, self.temp = text, full, fresh, probe, const, temp
        self.scale, self.base = scale, base  # a scaled value: ``scale`` (a constant) times the array ``base``

    def dtype(self):
        return getattr(self.probe, "dtype", None)


def _literal(val):
    """The Python number a constant's text is (a literal), else None."""
    return val.probe if val.const and type(val.probe) in (int, float, complex) else None


def _number(value):
    return _Val(f"({value!r})" if value.real < 0 or isinstance(value, complex) else repr(value), False, False,
                value, const=True)


def _const_mul(x, y):
    """The product of two constants (None: 1), folded when both are literals."""
    if x is None or _literal(x) == 1:
        return y
    if y is None or _literal(y) == 1:
        return x
    lx, ly = _literal(x), _literal(y)
    if lx is not None and ly is not None:
        return _number(lx * ly)
    return _Val(f"({x.text} * {y.text})", False, False, _ask_numpy(numpy.multiply, [x, y]), const=True)


def _const_neg(x):
    lx = _literal(x)
    if lx is not None:
        return _number(-lx)
    return _Val(f"(-{x.text})", False, False, _ask_numpy(numpy.negative, [x]), const=True)


def _probe(dtype):
    return numpy.empty(0, dtype)


def _ask_numpy(fn, args):
    """The result of ``fn`` on the operands' probes (an empty array of the result's dtype), or None when NumPy
    refuses the combination (the generated code then fails the same way, if it ever runs)."""
    if fn is None:
        return None
    try:
        with numpy.errstate(all="ignore"):
            result = fn(*(a.probe for a in args))
    except TypeError:
        return None
    return result if isinstance(result, numpy.ndarray) else numpy.asarray(result)[None][:0]


class _PythonWriter:
    """Emits the lines of one function, recording for each temporary the last line that reads it. ``known``:
    the locals that hold a constant (a folded unit cotangent), by name; ``input_alias``: the names that are one of
    the caller's input arrays (the input parameters, and the locals assigned one)."""

    def __init__(self, dtype, inplace):
        self.dtype = numpy.dtype(dtype)
        self.inplace = inplace
        self.lines: list[str] = []
        self.functions: set[str] = set()
        self.count = 0
        self.owned: dict[str, bool] = {}
        self.dtypes: dict[str, object] = {}
        self.temp_last: dict[str, int] = {}
        self.known: dict[str, _Val] = {}
        self.input_alias: set[str] = set()
        self.full: dict[str, bool] = {}  # whether a local has the region's full shape
        self.scaled: dict[str, _Val] = {}  # the locals that hold a scaled value: the name holds its base array
        self.root: dict[str, str] = {}  # name -> the new array (made by this function) it holds, if it holds one

    def local(self, var, probe):
        """The value of program local ``var``: its constant when it holds one, its scaled value when it holds
        one (the name holds the base), else the array it names."""
        known = self.known.get(var)
        if known is not None:
            return known
        sv = self.scaled.get(var)
        if sv is not None:
            base = _Val(var, sv.base.full, False, sv.base.probe)
            return _Val(var, base.full, False, sv.probe, scale=sv.scale, base=base)
        return _Val(var, self.full.get(var, True), False, probe)

    def plain(self, val):
        """``val`` with its scale applied (one pass over its base); a local that holds a scaled value is
        rebound to the product, so that it is computed once."""
        if val.scale is None:
            return val
        held = self.scaled.get(val.text)
        var = val.text if held is not None and held.scale.text == val.scale.text else None
        if var is not None and self.owned.get(var) and self.in_place_scalable(val):
            self.functions.add("multiply")
            self.emit(f"multiply({var}, {val.scale.text}, out={var})", [val])
            del self.scaled[var]
            self.dtypes[var] = self.dtype
            return _Val(var, True, False, val.probe)
        negated = _ask_numpy(numpy.negative, [val.base]) if _literal(val.scale) == -1 else None
        if negated is not None and negated.dtype == val.probe.dtype:  # not for bool (NumPy refuses its negative)
            out = self.ufunc("negative", [val.base], f"negative({val.base.text})")
        else:
            out = self.ufunc("multiply", [val.base, val.scale], f"{val.base.text} * {val.scale.text}")
        if var is not None:
            self.assign(var, out)
            return self.local(var, out.probe)
        return out

    def in_place_scalable(self, val):
        """The scaled value ``val``'s base may be multiplied by its scale in place (if nothing else holds it)."""
        scaled = _ask_numpy(numpy.multiply, [val.base, val.scale])
        return (self.inplace and val.base.full and self.is_t(val.base) and scaled is not None
                and scaled.dtype == self.dtype)

    def _scaled(self, base, scale, probe):
        if scale is None or _literal(scale) == 1:
            return base
        return _Val(base.text, base.full, base.fresh, probe, temp=base.temp, scale=scale, base=base)

    def mul(self, left, right):
        """``left * right`` with the constant factors of both multiplied together as scalars, applied later in
        one pass (``plain``); as written when folding would change the result's dtype."""
        if left.const and right.const:
            return _const_mul(left, right) if _literal(left) is not None and _literal(right) is not None \
                else _Val(f"({left.text} * {right.text})", False, False,
                          _ask_numpy(numpy.multiply, [left, right]), const=True)
        if not (left.const or right.const or left.scale or right.scale):
            return self.ufunc("multiply", [left, right], f"{left.text} * {right.text}")
        scale = _const_mul(left if left.const else left.scale, right if right.const else right.scale)
        bases = [v.base or v for v in (left, right) if not v.const]
        probe = _ask_numpy(numpy.multiply, [left, right])
        base_probe = bases[0].probe if len(bases) == 1 else _ask_numpy(numpy.multiply, bases)
        folded = None if base_probe is None else _ask_numpy(
            numpy.multiply, [_Val("", False, False, base_probe), scale]) if scale is not None else base_probe
        if (probe is None or folded is None or folded.dtype != probe.dtype
                or any(b.dtype() is not None and b.dtype().kind in "biu" for b in bases)):
            # (a boolean or integer base, where's cond, is multiplied now: a pending scale would leave the
            # integer array to the operations before it is applied)
            left, right = self.plain(left), self.plain(right)
            return self.ufunc("multiply", [left, right], f"{left.text} * {right.text}")
        base = bases[0] if len(bases) == 1 else self.ufunc(
            "multiply", bases, f"{bases[0].text} * {bases[1].text}")
        return self._scaled(base, scale, probe)

    def neg(self, val):
        if val.const:
            return _const_neg(val)
        base = val.base or val
        probe = _ask_numpy(numpy.negative, [val])
        scale = _const_neg(val.scale or _number(1))
        folded = _ask_numpy(numpy.multiply, [base, scale])
        if probe is None or folded is None or folded.dtype != probe.dtype:
            val = self.plain(val)
            return self.ufunc("negative", [val], f"negative({val.text})")
        return self._scaled(base, scale, probe)

    def is_t(self, val):
        """``val`` is an array of the region's dtype (a constant is not: NumPy keeps the other operand's)."""
        return not val.const and val.dtype() == self.dtype

    def emit(self, line, reads=(), made=None):
        for v in reads:
            if v.temp is not None:
                self.temp_last[v.temp] = len(self.lines)
        if made is not None:
            self.temp_last[made] = len(self.lines)
        self.lines.append(line)

    def new_temp(self, text, reads, full, fresh, probe):
        self.count += 1
        t = f"t{self.count}"
        self.emit(f"{t} = {text}", reads, made=t)
        if fresh:
            self.root[t] = t
        return _Val(t, full, fresh, probe, temp=t)

    def ufunc(self, fname, args, plain):
        assert all(a.scale is None for a in args)
        self.functions.add(fname)
        full = any(a.full for a in args)
        probe = _ask_numpy(getattr(numpy, fname), args)
        result_t = probe is not None and probe.dtype == self.dtype
        if self.inplace and full and result_t:
            for a in args:
                if a.fresh and a.full and self.is_t(a):
                    self.emit(f"{fname}({', '.join(x.text for x in args)}, out={a.text})", args)
                    return _Val(a.text, True, True, probe, temp=a.temp)
        return self.new_temp(plain, args, full, full, probe)

    def expr(self, node, env):
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.Constant):
            return _Val(repr(node.value), False, False, node.value, const=True)
        if isinstance(node, ast.UnaryOp):
            o = self.expr(node.operand, env)
            if isinstance(node.op, ast.UAdd):
                return o
            if o.const:
                return _Val(f"(-{o.text})", False, False, _ask_numpy(numpy.negative, [o]), const=True)
            return self.neg(o)
        if isinstance(node, ast.BinOp):
            left, right = self.expr(node.left, env), self.expr(node.right, env)
            if isinstance(node.op, ast.Mult):
                return self.mul(left, right)
            left, right = self.plain(left), self.plain(right)
            fname, sym = _UFUNC_OPS[type(node.op)]
            if left.const and right.const:
                return _Val(f"({left.text} {sym} {right.text})", False, False,
                            _ask_numpy(getattr(numpy, fname), [left, right]), const=True)
            return self.ufunc(fname, [left, right], f"{left.text} {sym} {right.text}")
        if isinstance(node, ast.Compare):
            left, right = self.plain(self.expr(node.left, env)), self.plain(self.expr(node.comparators[0], env))
            fname, sym = _COMPARE[type(node.ops[0])]
            probe = _ask_numpy(getattr(numpy, fname), [left, right])
            return self.new_temp(f"{left.text} {sym} {right.text}", [left, right], left.full or right.full,
                                 False, probe)
        if isinstance(node, ast.Call):
            fname = expr.FUNCTIONS[node.func.id][0]
            args = [self.plain(self.expr(a, env)) for a in node.args]
            if fname == "where":  # constant branches take T, as in C++ (np.where(c, 1, 0) would be int64)
                args = args[:1] + [_Val(f"_T({a.text})", False, False, _probe(self.dtype)) if a.const else a
                                   for a in args[1:]]
            plain = f"{fname}({', '.join(a.text for a in args)})"
            if isinstance(getattr(numpy, fname, None), numpy.ufunc):
                return self.ufunc(fname, args, plain)
            self.functions.add(fname)
            full = any(a.full for a in args)
            return self.new_temp(plain, args, full, full and fname in _FRESH_CALLS,
                                 _ask_numpy(getattr(numpy, fname, None), args))
        raise expr.ExprError(f"cannot render {ast.dump(node)}")

    def assign(self, var, val):
        """``var = val``; an alias of another variable is marked shared so neither is updated in place."""
        self.emit(f"{var} = {val.text}", [val])
        self.owned[var] = val.fresh
        self.dtypes[var] = None if val.const else val.dtype()
        if not val.fresh and val.text in self.owned:
            self.owned[val.text] = False
        self.known.pop(var, None)
        self.scaled.pop(var, None)
        self.root.pop(var, None)
        if val.text in self.root:
            self.root[var] = self.root[val.text]
        if val.scale is not None:
            self.scaled[var] = val
            self.dtypes[var] = None  # never updated in place before ``plain``
        if val.const:
            self.known[var] = val
        self.full[var] = val.full
        self.input_alias.discard(var)
        if val.text in self.input_alias:
            self.input_alias.add(var)

    def updatable(self, var, term):
        """Whether ``var op= term`` may update ``var``'s array in place."""
        return (self.inplace and self.owned.get(var) and self.dtypes.get(var) == self.dtype
                and self.is_t(term))

    def accumulate(self, var, term, first):
        if first:
            self.assign(var, term)
            return
        if var in self.scaled:
            self.plain(self.local(var, None))
        if term.scale is not None and _literal(term.scale) == -1 and self.updatable(var, term.base):
            self.emit(f"{var} -= {term.base.text}", [term])
            return
        term = self.plain(term)
        if var in self.known and term.const:  # two constants: the sum is a constant too
            sym = self.known[var]
            self.assign(var, _Val(f"({sym.text} + {term.text})", False, False,
                                  _ask_numpy(numpy.add, [sym, term]), const=True))
        elif self.updatable(var, term):
            self.emit(f"{var} += {term.text}", [term])
        else:
            self.known.pop(var, None)
            self.input_alias.discard(var)
            self.emit(f"{var} = {var} + {term.text}", [term])
            self.root[var] = f"{var}@{len(self.lines)}"
            self.full[var] = self.full.get(var, False) or term.full
            self.owned[var] = self.inplace and self.full[var]  # a new array (a scalar when in-place is off)
            current = self.dtypes.get(var)
            before = _Val(var, True, False, None if current is None else _probe(current))
            probe = _ask_numpy(numpy.add, [before, term])
            self.dtypes[var] = None if probe is None else probe.dtype


def _wirtinger_term(w, source, pair, env):
    """``a * A + conj(a * B)``: the term of a complex argument of a non-holomorphic row (``ops.elementwise``)."""
    parts = []
    for half, e in enumerate(pair):
        if e.constant == 0:
            continue
        part = source
        if e.constant != 1:
            factor = w.expr(e.tree, env)
            part = w.ufunc("multiply", [source, factor], f"{source.text} * {factor.text}")
        if half:
            part = w.ufunc("conjugate", [part], f"conjugate({part.text})")
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return w.ufunc("add", parts, f"{parts[0].text} + {parts[1].text}")


def _name(ref):
    """The Python name of a program local (("v", k), ("a", k), ("g", j))."""
    return f"{ref[0]}{ref[1]}"


@lru_cache(maxsize=4096)
def python_source(region: Region):
    """(source of ``region_bwd(i0.., c0.., s0..)`` returning the written outputs, names of the namespace
    functions it uses, and per written output whether it is a new array owned by the caller)."""
    prog = program(region)
    w = _PythonWriter(region.dtype, inplace=not region.scalar)
    t = _probe(w.dtype)
    inputs = [_Val(f"i{j}", full, False, _probe(numpy.dtype(d))) for j, (d, full) in enumerate(region.inputs)]
    w.input_alias.update(v.text for v in inputs)
    values = {}  # node k -> _Val of its forward value v{k}

    def env_of(k):
        refs = region.nodes[k][1]
        env = {}
        for q, r in enumerate(refs):
            r = prog.resolve(r)
            if r[0] == "i":
                env["xyz"[q]] = inputs[r[1]]
            elif r[0] == "c":  # a 0-d array of T (see run._run_python): NumPy keeps the other operand's dtype
                env["xyz"[q]] = _Val(f"c{r[1]}", False, False, t, const=True)
            else:
                env["xyz"[q]] = values.get(r[1]) or _Val(f"v{r[1]}", True, False, t)
        out = prog.resolve(("v", k))
        env["out"] = inputs[out[1]] if out[0] == "i" else values.get(k) or _Val(f"v{k}", True, False, t)
        return env

    statements = prog.statements()
    scale = _repeated_terms(prog, statements)
    last = prog.last_reads()
    result_names = {_name(local(region.outputs[o])) for o in prog.written}
    ends = []  # per statement of the program: the index of its last line
    declared = set()
    one = _Val("1", False, False, 1, const=True)
    for n, (kind, what, _) in enumerate(statements):
        if kind == "value":
            k = what
            val = w.plain(w.expr(prog.prims[k].forward.tree, env_of(k)))
            w.assign(f"v{k}", _Val(val.text, val.full, False, val.probe, val.const, val.temp))
            values[k] = _Val(f"v{k}", val.full, False, val.probe, val.const)
        elif kind == "seed":
            k = region.seeded[what]
            w.assign(f"a{k}", one if what in region.unit_seeds else _Val(f"s{what}", True, False, t))
            declared.add(("v", k))
        elif scale.get(n, 1):
            target, k, q = what
            var, first = _name(local(target)), target not in declared
            partial = prog.prims[k].partials[q]
            c = partial.constant
            source = w.local(f"a{k}", t)
            pair = prog.pairs.get((k, q)) if prog.pairs else None
            if pair is not None:
                term = _wirtinger_term(w, w.plain(source), pair, env_of(k))
            elif c == 1:
                term = source
                if w.owned.get(source.text) and last.get(("a", k)) == n and source.text not in result_names:
                    base = _Val(source.text, source.full, True, (source.base or source).probe)  # handed on
                    term = base if source.scale is None else w._scaled(base, source.scale, source.probe)
            elif c == -1:
                term = w.neg(source)
            else:
                factor = w.expr(partial.tree, env_of(k))
                if source.text == "1" and source.const:  # a folded unit seed: the factor alone, in the seed's
                    # dtype (a partial of booleans, where's 1 - cond, is an integer array in NumPy)
                    seeded = _ask_numpy(numpy.multiply, [_Val("", False, False, t), factor])
                    term = factor if seeded is None or factor.dtype() == seeded.dtype else w.mul(
                        _Val("_T(1)", False, False, t, const=True), factor)
                else:
                    term = w.mul(source, factor)
            if scale.get(n, 1) > 1:
                term = w.mul(term, _Val(str(scale[n]), False, False, scale[n], const=True))
            w.accumulate(var, term, first)
            declared.add(target)
        ends.append(len(w.lines) - 1)
    results = [_name(local(region.outputs[o])) for o in prog.written]
    for r in dict.fromkeys(results):  # a scaled cotangent: its scale applied, in place when nothing else returned
        # holds its array and this function made it (every other local is dead by now)
        if r in w.scaled:
            sv = w.local(r, None)
            root = w.root.get(r)
            if (root is not None and w.in_place_scalable(sv)
                    and sum(w.root.get(q) == root for q in dict.fromkeys(results)) == 1):
                w.owned[r] = True
            w.plain(sv)
    for r in dict.fromkeys(results):  # what folding a unit seed can leave: constants, inputs, broadcast shapes
        # (the parameters themselves are never results: program locals are g*, a* and v* names)
        if not region.scalar and not w.full.get(r, True):  # a read-only broadcast view: no pass over memory
            w.functions.add("broadcast_to")
            w.emit(f"{r} = broadcast_to({f'_T({r})' if r in w.known else r}, s{prog.live_seeds[0]}.shape)")
            w.owned[r] = False
        if r in w.input_alias:  # never hand the caller one of its own arrays as a cotangent
            w.functions.add("copy")
            w.emit(f"{r} = copy({r})")
            w.owned[r] = True
    fresh = tuple(bool(w.owned.get(r)) and results.count(r) == 1 for r in results)
    # free every local after its last use: program locals after the last statement that reads them (or the one
    # that makes them, when none does), temporaries after the last line that reads them
    dead_after: dict[int, list[str]] = {}
    for name, line in w.temp_last.items():
        dead_after.setdefault(line, []).append(name)
    for n, (kind, what, _) in enumerate(statements):
        made = (("v", what) if kind == "value" else ("a", region.seeded[what]) if kind == "seed"
                else local(what[0]))
        last.setdefault(made, n)
    keep = set(results)
    for ref, n in last.items():
        if _name(ref) not in keep and ends[n] >= 0:
            dead_after.setdefault(ends[n], []).append(_name(ref))
    body = []
    for n, line in enumerate(w.lines):
        body.append("    " + line)
        dead = dead_after.get(n)
        if dead:
            body.append("    del " + ", ".join(sorted(set(dead))))
    params = ([f"i{j}" for j in range(len(region.inputs))] + [f"c{j}" for j in range(region.n_consts)]
              + [f"s{i}" for i in range(len(region.seeded))])
    source = (f"def region_bwd({', '.join(params)}):\n" + "\n".join(body or ["    pass"])
              + f"\n    return ({''.join(r + ', ' for r in results)})\n")
    return source, tuple(sorted(w.functions)), fresh


def _repeated_terms(prog, statements):
    """{statement index: how many times its term is added}: a step whose partial, read over the same values,
    equals an earlier step's of the same node into the same cotangent (both partials of ``x * x``) is folded
    into that step (scale 0; the first one's term is scaled by the count instead of computed again)."""
    scale, first = {}, {}
    for n, (kind, what, _) in enumerate(statements):
        if kind != "step":
            continue
        target, k, q = what
        # the term's factors: the partial, or a complex argument's Wirtinger pair (A, B)
        key = (target, k, tuple(e.constant if e.constant is not None else e.cuda(prog.rename(k, _name))
                                for e in prog.factors(k, q)))
        if key in first:
            scale[first[key]] = scale.get(first[key], 1) + 1
            scale[n] = 0
        else:
            first[key] = n
    return scale


_python_cache: dict = {}


def python_function(region: Region, namespace):
    """``python_source`` compiled against ``namespace`` (numpy or cupy): (function, fresh flags)."""
    key = (region, namespace)
    hit = _python_cache.get(key)
    if hit is None:
        if len(_python_cache) >= 4096:  # programs whose structure keeps changing: start over
            _python_cache.clear()
        source, functions, fresh = python_source(region)
        scope = {f: getattr(namespace, f) for f in functions}
        scope["_T"] = numpy.dtype(region.dtype).type
        exec(compile(source, f"<gpuad region {describe(region)}>", "exec"), scope)  # noqa: S102 (generated)
        hit = _python_cache[key] = (scope["region_bwd"], fresh)
    return hit
