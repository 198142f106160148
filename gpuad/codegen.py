"""Source generation for the fused backward kernels: one adjoint program per elementwise region, rendered twice.

A ``Region`` is the structure of a connected group of elementwise tape entries over one broadcast shape: its ops
(by rule-row name) with argument references, which nodes receive a cotangent from outside, and which
cotangents it must produce. ``program(region)`` composes the rows symbolically into straight-line code: the
forward values the partials need, recomputed from the region's inputs, then the adjoints in reverse order, with
dead code pruned. That one program is rendered

* to C++ (``kernel_source``): a per-element function (``element``, the math) and a per-index function (``at``,
  loads, the call, stores that write or add), wrapped by the template ``kernels/elementwise_bwd.cu`` into a CUDA
  grid-stride kernel or by ``kernels/elementwise_bwd.cpp`` into a plain CPU loop; both builds share every line
  of the generated text;
* to Python (``python_function``) over a NumPy-compatible namespace, with ``out=`` reuse of temporaries and
  in-place accumulation where NumPy allows, and ``del`` after each value's last use.

A single op is the one-node region, so its kernel is ``gpuad_<op>_bwd_...``. Everything here is a pure function
of hashable structure, cached in the process.
"""
from __future__ import annotations

import ast
import hashlib
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy  # dtype bookkeeping and ufunc introspection only

from . import expr

# ---------------------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """What a fused backward computes, independent of array sizes and layouts.

    ``nodes``: (op name, argument refs) in tape order; a ref is ("i", j) external input j, ("c", j) Python scalar
    j, or ("v", k) the value of node k. ``inputs``: (dtype name, has the region's full shape) per external input.
    ``seeded``: nodes whose cotangent arrives from outside. ``outputs``: ("i", j) the cotangent of input j, or
    ("v", k) the total adjoint of node k (a node that is itself a differentiation source).
    """

    dtype: str
    scalar: bool  # the broadcast shape is (): NumPy computes with scalars, so no in-place updates
    inputs: tuple
    n_consts: int
    nodes: tuple
    seeded: tuple
    outputs: tuple


@dataclass(frozen=True)
class KernelSpec:
    """A region's kernel for one combination of operand layouts. ``layouts``: (C type, kind) per operand, in
    the order used inputs, used seeds, written outputs; kind is "full" (C-contiguous, the whole shape: index i),
    "scalar" (one element) or "strided" (offset from the coordinates over ``ndim`` collapsed dimensions)."""

    region: Region
    layouts: tuple
    ndim: int

    @property
    def name(self) -> str:
        return _kernel_name(self)


def _prims():
    from .rules import registry
    return registry()


def _nonzero(partial) -> bool:
    return partial is not None and partial.constant != 0


class Program:
    """The composed adjoint program of a region (see the module docstring)."""

    def __init__(self, region: Region):
        self.region = region
        prims = _prims()
        self.prims = [prims[name] for name, _ in region.nodes]
        nodes = region.nodes
        n = len(nodes)
        out_inputs = {j for kind, j in region.outputs if kind == "i"}
        out_nodes = {k for kind, k in region.outputs if kind == "v"}
        # useful[k]: node k's adjoint reaches a requested output
        useful = [False] * n
        for k, (_, refs) in enumerate(nodes):
            if k in out_nodes:
                useful[k] = True
                continue
            partials = self.prims[k].partials
            useful[k] = any(_nonzero(partials[q]) and ((r[0] == "i" and r[1] in out_inputs) or
                                                       (r[0] == "v" and useful[r[1]]))
                            for q, r in enumerate(refs))
        seeded = set(region.seeded)
        has_adjoint = [k in seeded for k in range(n)]
        steps = []  # (target ref, source node, argument position), in execution order
        for k in range(n - 1, -1, -1):
            if not (has_adjoint[k] and useful[k]):
                continue
            partials = self.prims[k].partials
            for q, r in enumerate(nodes[k][1]):
                if not _nonzero(partials[q]):
                    continue
                if r[0] == "i" and r[1] in out_inputs:
                    steps.append((r, k, q))
                elif r[0] == "v" and useful[r[1]]:
                    steps.append((r, k, q))
                    has_adjoint[r[1]] = True
        self.steps = steps
        self.live_seeds = tuple(i for i, k in enumerate(region.seeded) if useful[k])
        targets = {t for t, _, _ in steps}
        self.written = tuple(o for o, (kind, j) in enumerate(region.outputs)
                             if (kind, j) in targets or (kind == "v" and has_adjoint[j] and j in seeded))
        # forward values the partials read, and the values those are computed from
        needed = set()
        for _, k, q in steps:
            refs = nodes[k][1]
            for name in self.prims[k].partials[q].names:
                if name == "out":
                    needed.add(k)
                else:
                    r = refs["xyz".index(name)]
                    if r[0] == "v":
                        needed.add(r[1])
        for k in range(n - 1, -1, -1):
            if k in needed:
                needed.update(r[1] for r in nodes[k][1] if r[0] == "v")
        self.values = sorted(needed)
        used = set()
        for k in self.values:
            used.update(r[1] for r in nodes[k][1] if r[0] == "i")
        for _, k, q in steps:
            refs = nodes[k][1]
            used.update(refs["xyz".index(name)][1] for name in self.prims[k].partials[q].names
                        if name != "out" and refs["xyz".index(name)][0] == "i")
        self.used_inputs = tuple(sorted(used))

    def rename(self, k, ref_text):
        """The names of node k's row expressions (x, y, z, out) as rendered references."""
        refs = self.region.nodes[k][1]
        mapping = {"xyz"[q]: ref_text(r) for q, r in enumerate(refs)}
        mapping["out"] = ref_text(("v", k))
        return mapping


@lru_cache(maxsize=4096)
def program(region: Region) -> Program:
    return Program(region)


# ---------------------------------------------------------------------------------------------------------
# C++ (CUDA and CPU from one text)
# ---------------------------------------------------------------------------------------------------------

C_TYPES = {"float32": "float", "float64": "double", "bool": "bool", "int8": "signed char", "int16": "short",
           "int32": "int", "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
           "uint32": "unsigned int", "uint64": "unsigned long long"}
KERNEL_DTYPES = ("float32", "float64")  # compute types T the kernels support; others use the Python rendering


def _c_ref(r):
    return {"i": "i", "c": "c", "v": "v"}[r[0]] + str(r[1])


@lru_cache(maxsize=4096)
def element_source(region: Region) -> str:
    """``element``: the region's math on one element, from the loaded inputs and seeds to the outputs."""
    prog = program(region)
    params = [f"const T i{j}" for j in prog.used_inputs]
    params += [f"const T c{j}" for j in range(region.n_consts)]
    params += [f"const T s{i}" for i in prog.live_seeds]
    params += [f"T& o{o}" for o in prog.written]
    lines = [f"GPUAD_FN void element({', '.join(params)}) {{"]
    for k in prog.values:
        name, _ = region.nodes[k]
        e = prog.prims[k].forward
        lines.append(f"    const T v{k} = (T)({e.cuda(prog.rename(k, _c_ref))});  // {name}")
    declared = set()
    for i in prog.live_seeds:
        k = region.seeded[i]
        lines.append(f"    T a{k} = s{i};")
        declared.add(("v", k))
    for target, k, q in prog.steps:
        partial = prog.prims[k].partials[q]
        c = partial.constant
        term = f"a{k}" if c == 1 else f"-a{k}" if c == -1 else f"a{k} * ({partial.cuda(prog.rename(k, _c_ref))})"
        var = ("g" if target[0] == "i" else "a") + str(target[1])
        if target in declared:
            lines.append(f"    {var} += {term};")
        else:
            lines.append(f"    T {var} = {term};")
            declared.add(target)
    for o in prog.written:
        kind, j = region.outputs[o]
        lines.append(f"    o{o} = {'g' if kind == 'i' else 'a'}{j};")
    lines.append("}")
    return "\n".join(lines)


def operands(region: Region):
    """(role, index) of each kernel operand in order: used inputs, live seeds, written outputs."""
    prog = program(region)
    return ([("in", j) for j in prog.used_inputs] + [("seed", i) for i in prog.live_seeds]
            + [("out", o) for o in prog.written])


def _operand_name(role, index):
    return {"in": "in", "seed": "sd", "out": "out"}[role] + str(index)


@lru_cache(maxsize=4096)
def _signature(spec: KernelSpec):
    """(kernel parameters, argument names after n, body of ``at``) for a spec."""
    region = spec.region
    prog = program(region)
    t = C_TYPES[region.dtype]
    params = ["const long long n"] + [f"const long long d{a}" for a in range(spec.ndim)]
    loads = {}
    stores = []
    strided = False
    for (role, index), (ctype, kind) in zip(operands(region), spec.layouts):
        name = _operand_name(role, index)
        qualifier = "" if role == "out" else "const "
        params.append(f"{qualifier}{ctype}* __restrict__ {name}")
        if kind == "strided":
            strided = True
            params += [f"const long long {name}_s{a}" for a in range(spec.ndim)]
            where = " + ".join(f"q{a} * {name}_s{a}" for a in range(spec.ndim))
        else:
            where = "i" if kind == "full" else "0"
        if role == "out":
            bit = 1 << len(stores)
            stores.append(f"    if (flags & {bit}u) {name}[{where}] += ({ctype})o{index}; "
                          f"else {name}[{where}] = ({ctype})o{index};")
        else:
            loads[(role, index)] = f"(T){name}[{where}]"
    params += [f"const {t} c{j}" for j in range(region.n_consts)]
    params.append("const unsigned int flags")
    body = []
    if strided:
        body.append("    long long r = i;")
        for a in range(spec.ndim - 1, 0, -1):
            body.append(f"    const long long q{a} = r % d{a}; r /= d{a};")
        body.append("    const long long q0 = r;")
    if prog.written:
        body.append("    T " + ", ".join(f"o{o}" for o in prog.written) + ";")
    call = ([loads[("in", j)] for j in prog.used_inputs] + [f"c{j}" for j in range(region.n_consts)]
            + [loads[("seed", i)] for i in prog.live_seeds] + [f"o{o}" for o in prog.written])
    body.append(f"    element({', '.join(call)});")
    body += stores
    args = [p.split()[-1] for p in params[1:]]
    at_params = ["const long long i"] + params[1:]
    at = f"GPUAD_FN void at({', '.join(at_params)}) {{\n" + "\n".join(body) + "\n}"
    return ", ".join(params), ", ".join(args), at


def _what(region: Region) -> str:
    ops = []
    for name, _ in region.nodes:
        if name not in ops:
            ops.append(name)
    if len(region.nodes) == 1:
        return ops[0]
    shown = "_".join(ops[:4]) + ("_etc" if len(ops) > 4 else "")
    return f"fused{len(region.nodes)}_{shown}"


@lru_cache(maxsize=4096)
def _kernel_name(spec: KernelSpec) -> str:
    digest = hashlib.sha1(repr((spec.region, spec.layouts, spec.ndim)).encode()).hexdigest()[:8]
    return f"gpuad_{_what(spec.region)}_bwd_{'f32' if spec.region.dtype == 'float32' else 'f64'}_{digest}"


@lru_cache(maxsize=4096)
def kernel_body(spec: KernelSpec) -> str:
    """The generated text both builds share: a namespace with T, ``element`` and ``at``."""
    region = spec.region
    ops = ", ".join(name for name, _ in region.nodes)
    head = (f"// {spec.name}: cotangents of {len(region.inputs)} input(s) of the elementwise region [{ops}]\n"
            f"namespace {spec.name}_ns {{\ntypedef {C_TYPES[region.dtype]} T;")
    return "\n".join([head, element_source(region), _signature(spec)[2], "}  // namespace"])


def kernel_source(spec: KernelSpec, target: str = "cuda") -> str:
    """The complete translation unit for ``target`` "cuda" (nvcc, NVRTC) or "cpu" (a host C++ compiler)."""
    return _kernel_source(spec, target)


@lru_cache(maxsize=4096)
def _kernel_source(spec, target):
    params, args, _ = _signature(spec)
    template = string.Template(load_template("elementwise_bwd.cu" if target == "cuda" else "elementwise_bwd.cpp"))
    return template.substitute(prelude=load_template("prelude.h"), body=kernel_body(spec), name=spec.name,
                               namespace=f"{spec.name}_ns", params=params, args=args)


def kernel_param_kinds(spec: KernelSpec):
    """The kind of each kernel parameter in order: "i64", "ptr", "f32"/"f64" (a Python scalar), "u32"."""
    kinds = ["i64"] * (1 + spec.ndim)
    for ctype, kind in spec.layouts:
        kinds.append("ptr")
        if kind == "strided":
            kinds += ["i64"] * spec.ndim
    kinds += ["f32" if spec.region.dtype == "float32" else "f64"] * spec.region.n_consts
    kinds.append("u32")
    return kinds


_templates: dict[str, str] = {}


def load_template(name: str) -> str:
    """A file of ``kernels/``: from the installed package ``gpuad.kernels``, else from the source tree."""
    text = _templates.get(name)
    if text is None:
        try:
            from importlib import resources
            text = resources.files("gpuad.kernels").joinpath(name).read_text()
        except (ModuleNotFoundError, FileNotFoundError):
            text = (Path(__file__).resolve().parent.parent / "kernels" / name).read_text()
        _templates[name] = text
    return text


# ---------------------------------------------------------------------------------------------------------
# Python over a NumPy-like namespace
# ---------------------------------------------------------------------------------------------------------

_UFUNC_OPS = {ast.Add: ("add", "+"), ast.Sub: ("subtract", "-"), ast.Mult: ("multiply", "*"),
              ast.Div: ("divide", "/")}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_FRESH_CALLS = {"where", "clip", "nan_to_num"}  # non-ufuncs that always return a new array
_LOCAL = re.compile(r"\b[tvag]\d+\b")


class _Val:
    """A rendered subexpression: its text, whether it has the region's full shape, whether it is a temporary
    this function owns (so it may be overwritten with out=), and its kind: "num" (an array of dtype T),
    "bool", "const" (a Python scalar: NumPy keeps T) or "other" (any other dtype, e.g. 1 - bool is int64)."""

    __slots__ = ("text", "full", "fresh", "kind")

    def __init__(self, text, full, fresh, kind):
        self.text, self.full, self.fresh, self.kind = text, full, fresh, kind


def _result_kind(kinds):
    """The kind of an arithmetic result, following NumPy's promotion: T with bools and Python scalars stays T."""
    if "other" in kinds:
        return "other"
    if "num" in kinds:
        return "num"
    return "other"  # bools and scalars only: int64, float64 or a NumPy scalar


class _PythonWriter:
    def __init__(self, inplace):
        self.inplace = inplace
        self.lines: list[str] = []
        self.functions: set[str] = set()
        self.count = 0
        self.owned: dict[str, bool] = {}
        self.kinds: dict[str, str] = {}

    def temp(self):
        self.count += 1
        return f"t{self.count}"

    def ufunc(self, fname, args, plain, kind):
        self.functions.add(fname)
        full = any(a.full for a in args)
        if self.inplace and full and kind == "num":
            for a in args:
                if a.fresh and a.full and a.kind == "num":
                    self.lines.append(f"{fname}({', '.join(x.text for x in args)}, out={a.text})")
                    return _Val(a.text, True, True, "num")
        t = self.temp()
        self.lines.append(f"{t} = {plain}")
        return _Val(t, full, full, kind)

    def expr(self, node, env):
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.Constant):
            return _Val(repr(node.value), False, False, "const")
        if isinstance(node, ast.UnaryOp):
            o = self.expr(node.operand, env)
            if isinstance(node.op, ast.UAdd):
                return o
            if o.kind == "const":
                return _Val(f"(-{o.text})", False, False, "const")
            return self.ufunc("negative", [o], f"negative({o.text})", _result_kind([o.kind]))
        if isinstance(node, ast.BinOp):
            left, right = self.expr(node.left, env), self.expr(node.right, env)
            fname, sym = _UFUNC_OPS[type(node.op)]
            if left.kind == "const" and right.kind == "const":
                return _Val(f"({left.text} {sym} {right.text})", False, False, "const")
            if left.kind == right.kind == "bool":
                kind = "bool" if sym in "+*" else "other"
            else:
                kind = _result_kind([left.kind, right.kind])
            return self.ufunc(fname, [left, right], f"{left.text} {sym} {right.text}", kind)
        if isinstance(node, ast.Compare):
            left, right = self.expr(node.left, env), self.expr(node.comparators[0], env)
            t = self.temp()
            self.lines.append(f"{t} = {left.text} {_COMPARE[type(node.ops[0])]} {right.text}")
            return _Val(t, left.full or right.full, False, "bool")
        if isinstance(node, ast.Call):
            fname = expr.FUNCTIONS[node.func.id][0]
            args = [self.expr(a, env) for a in node.args]
            if fname == "where":  # constant branches take T, as in C++ (np.where(c, 1, 0) would be int64)
                branches = [_Val(f"_T({a.text})", False, False, "num") if a.kind == "const" else a
                            for a in args[1:]]
                args = args[:1] + branches
                kind = "num" if all(b.kind == "num" for b in branches) else "other"
            else:
                kind = _result_kind([a.kind for a in args])
            plain = f"{fname}({', '.join(a.text for a in args)})"
            if isinstance(getattr(numpy, fname, None), numpy.ufunc):
                return self.ufunc(fname, args, plain, kind)
            self.functions.add(fname)
            t = self.temp()
            self.lines.append(f"{t} = {plain}")
            full = any(a.full for a in args)
            return _Val(t, full, full and fname in _FRESH_CALLS, kind)
        raise expr.ExprError(f"cannot render {ast.dump(node)}")

    def assign(self, var, val):
        """``var = val``; an alias of another variable is marked shared so neither is updated in place."""
        self.lines.append(f"{var} = {val.text}")
        self.owned[var] = val.fresh
        self.kinds[var] = val.kind
        if not val.fresh and val.text in self.owned:
            self.owned[val.text] = False

    def accumulate(self, var, term, first):
        if first:
            self.assign(var, term)
        elif self.inplace and self.owned.get(var) and self.kinds.get(var) == "num" == term.kind:
            self.lines.append(f"{var} += {term.text}")
        else:
            self.lines.append(f"{var} = {var} + {term.text}")
            self.owned[var] = self.inplace  # a new full-shape array (a scalar when in-place is off)
            self.kinds[var] = _result_kind([self.kinds.get(var, "num"), term.kind])


@lru_cache(maxsize=4096)
def python_source(region: Region):
    """(source of ``region_bwd(i0.., c0.., s0..)`` returning the written outputs, names of the namespace
    functions it uses, and per written output whether it is a new array owned by the caller)."""
    prog = program(region)
    w = _PythonWriter(inplace=not region.scalar)
    full_inputs = {j: f for j, (_, f) in enumerate(region.inputs)}
    kinds = {j: "bool" if d == "bool" else "num" if d == region.dtype else "other"
             for j, (d, _) in enumerate(region.inputs)}

    value_full, value_kind = {}, {}

    def ref_val(r):
        if r[0] == "i":
            return _Val(f"i{r[1]}", full_inputs[r[1]], False, kinds[r[1]])
        if r[0] == "c":
            return _Val(f"c{r[1]}", False, False, "const")
        return _Val(f"v{r[1]}", value_full.get(r[1], True), False, value_kind.get(r[1], "num"))

    def env_of(k):
        refs = region.nodes[k][1]
        env = {"xyz"[q]: ref_val(r) for q, r in enumerate(refs)}
        env["out"] = ref_val(("v", k))
        return env

    for k in prog.values:
        val = w.expr(prog.prims[k].forward.tree, env_of(k))
        value_full[k], value_kind[k] = val.full, val.kind
        w.assign(f"v{k}", _Val(val.text, val.full, False, val.kind))
    declared = set()
    for i in prog.live_seeds:
        k = region.seeded[i]
        w.assign(f"a{k}", _Val(f"s{i}", True, False, "num"))
        declared.add(("v", k))
    for target, k, q in prog.steps:
        partial = prog.prims[k].partials[q]
        c = partial.constant
        source = _Val(f"a{k}", True, False, "num")
        if c == 1:
            term = source
        elif c == -1:
            term = w.ufunc("negative", [source], f"negative(a{k})", "num")
        else:
            factor = w.expr(partial.tree, env_of(k))
            term = w.ufunc("multiply", [source, factor], f"a{k} * {factor.text}",
                           _result_kind(["num", factor.kind]))
        var = ("g" if target[0] == "i" else "a") + str(target[1])
        w.accumulate(var, term, target not in declared)
        declared.add(target)
    results = [("g" if region.outputs[o][0] == "i" else "a") + str(region.outputs[o][1]) for o in prog.written]
    fresh = tuple(bool(w.owned.get(r)) and results.count(r) == 1 for r in results)
    # free every local after its last use: the function holds only what is still needed
    last = {}
    for n, line in enumerate(w.lines):
        for name in _LOCAL.findall(line):
            last[name] = n
    keep = set(results)
    body = []
    for n, line in enumerate(w.lines):
        body.append("    " + line)
        dead = sorted(name for name, at in last.items() if at == n and name not in keep)
        if dead:
            body.append("    del " + ", ".join(dead))
    params = ([f"i{j}" for j in range(len(region.inputs))] + [f"c{j}" for j in range(region.n_consts)]
              + [f"s{i}" for i in range(len(region.seeded))])
    source = (f"def region_bwd({', '.join(params)}):\n" + "\n".join(body or ["    pass"])
              + f"\n    return ({''.join(r + ', ' for r in results)})\n")
    return source, tuple(sorted(w.functions)), fresh


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
        exec(compile(source, f"<gpuad region {_what(region)}>", "exec"), scope)  # noqa: S102 (generated)
        hit = _python_cache[key] = (scope["region_bwd"], fresh)
    return hit
