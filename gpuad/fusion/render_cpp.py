"""The C++ rendering of a region's adjoint program: one generated text, two builds (CUDA and CPU).

``kernel_source(spec, target)`` prints the composed program (``program.Program``) as a per-element function
(``element``: the math) and a per-index function (``at``: loads, the call, stores that write or add), and wraps
them with a template of the top-level ``kernels/`` folder (shipped inside the installed package as
``gpuad.kernels``): ``elementwise_bwd.cu``, a CUDA grid-stride kernel, or ``elementwise_bwd.cpp``, a plain CPU
loop. Both builds share every line of the generated text. ``kernel_param_kinds`` says how a launcher passes each
kernel argument. Complex regions (and real ones reading complex inputs) compute in ``gpuad_complex<R>``:
``thrust::complex`` from CuPy's header on the GPU, ``std::complex`` on the CPU (``kernels/prelude_complex.h``).
"""
from __future__ import annotations

import ast
import string
from functools import lru_cache
from pathlib import Path

from .program import COMPLEX_DTYPES, KernelSpec, Region, operands, program

C_TYPES = {"float32": "float", "float64": "double", "bool": "bool", "int8": "signed char", "int16": "short",
           "int32": "int", "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
           "uint32": "unsigned int", "uint64": "unsigned long long", "float16": "gpuad_f16", "bfloat16": "gpuad_bf16",
           "complex64": "gpuad_c64", "complex128": "gpuad_c128"}
# Region dtypes the kernels support; others use the Python rendering. The real type R of a region's math:
# float16/bfloat16 operands are loaded into float and the results rounded once when stored (kernels/prelude_half.h).
# A complex region computes in C = gpuad_complex<R> (kernels/prelude_complex.h): T, the type of its values and
# adjoints, is C there and R elsewhere. Every input keeps its kind (a real one is loaded as R, a complex one as C,
# as mixed arithmetic promotes it), and so does its adjoint, except that a real input of a complex region sums a
# complex adjoint whose real part is stored (a real argument's cotangent is the real part).
KERNEL_DTYPES = ("float32", "float64", "float16", "bfloat16", "complex64", "complex128")
REAL_TYPES = {"float32": "float", "float64": "double", "float16": "float", "bfloat16": "float", "complex64": "float",
              "complex128": "double"}
NARROW_C_TYPES = ("gpuad_f16", "gpuad_bf16")  # stored narrow: accumulated as R, then rounded
COMPLEX_C_TYPES = ("gpuad_c64", "gpuad_c128")
_COMPLEX_OF = {"float": "complex64", "double": "complex128"}
_REAL_OF = {"float": "float32", "double": "float64"}


def uses_complex(region: Region) -> bool:
    """The region computes with complex values: its dtype or an input's is complex."""
    return region.dtype in COMPLEX_DTYPES or any(d in COMPLEX_DTYPES for d, _ in region.inputs)


def _input_type(region, j):
    return "C" if region.inputs[j][0] in COMPLEX_DTYPES else "R"


def _adjoint_complex(region, output):
    """The adjoint of ``region.outputs[o]`` is complex: in a complex region, or of a complex input."""
    kind, j = output
    return region.dtype in COMPLEX_DTYPES or (kind == "i" and region.inputs[j][0] in COMPLEX_DTYPES)


def temporary_dtype(region: Region, target_dtype: str) -> str:
    """The dtype of the full-shape temporary a kernel writes an output into when its target (of
    ``target_dtype``) was broadcast: the region's precision, of the target's kind (real or complex)."""
    if (region.dtype in COMPLEX_DTYPES) == (target_dtype in COMPLEX_DTYPES):
        return region.dtype
    real = REAL_TYPES[region.dtype]
    return _COMPLEX_OF[real] if target_dtype in COMPLEX_DTYPES else _REAL_OF[real]


def _c_ref(r):
    return {"i": "i", "c": "c", "v": "v"}[r[0]] + str(r[1])


@lru_cache(maxsize=4096)
def element_source(region: Region) -> str:
    """``element``: the region's math on one element, from the loaded inputs and seeds to the outputs."""
    prog = program(region)
    params = [f"const {_input_type(region, j)} i{j}" for j in prog.used_inputs]
    params += [f"const R c{j}" for j in range(region.n_consts)]
    params += [f"const T s{i}" for i in prog.live_seeds]
    params += [f"{'C' if _adjoint_complex(region, region.outputs[o]) else 'T'}& o{o}" for o in prog.written]
    lines = [f"GPUAD_FN void element({', '.join(params)}) {{"]
    for k in prog.values:
        prim = prog.prims[k]
        lines.append(f"    const T v{k} = (T)({prim.forward.cuda(prog.rename(k, _c_ref))});  // {prim.name}")
    declared = set()
    for i in prog.live_seeds:
        k = region.seeded[i]
        lines.append(f"    T a{k} = s{i};")
        declared.add(("v", k))
    for target, k, q in prog.steps:
        term = _term(prog, k, q)
        var = ("g" if target[0] == "i" else "a") + str(target[1])
        if target in declared:
            lines.append(f"    {var} += {term};")
        else:
            vtype = "C" if target[0] == "i" and _adjoint_complex(region, target) else "T"
            lines.append(f"    {vtype} {var} = {term};")
            declared.add(target)
    for o in prog.written:
        kind, j = region.outputs[o]
        lines.append(f"    o{o} = {'g' if kind == 'i' else 'a'}{j};")
    lines.append("}")
    return "\n".join(lines)


def _boolean(node) -> bool:
    """The expression's C++ value is a bool or an int made of bools (``(x >= y) * (x <= z)``)."""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BinOp):
        return _boolean(node.left) and _boolean(node.right)
    return isinstance(node, ast.UnaryOp) and _boolean(node.operand)


def _term(prog, k, q):
    """Step (k, q)'s term in C++: ``a * partial`` (a boolean partial cast to R: complex types multiply by their
    own real type only), or for a Wirtinger pair ``a * A + conj(a * B)``, each part left out where its factor
    is 0."""
    rename = prog.rename(k, _c_ref)
    pair = prog.pairs.get((k, q)) if prog.pairs else None
    if pair is None:
        partial = prog.prims[k].partials[q]
        c = partial.constant
        if c == 1 or c == -1:
            return f"a{k}" if c == 1 else f"-a{k}"
        return f"a{k} * {'(R)' if _boolean(partial.tree) else ''}({partial.cuda(rename)})"
    a, b = pair
    parts = []
    if a.constant != 0:
        parts.append(f"a{k}" if a.constant == 1 else f"a{k} * ({a.cuda(rename)})")
    if b.constant != 0:
        parts.append(f"gpuad_conj({f'a{k}' if b.constant == 1 else f'a{k} * ({b.cuda(rename)})'})")
    return " + ".join(parts)


def _operand_name(role, index):
    return {"in": "in", "seed": "sd", "out": "out"}[role] + str(index)


@lru_cache(maxsize=4096)
def _signature(spec: KernelSpec):
    """(kernel parameters, argument names after n, body of ``at``) for a spec."""
    region = spec.region
    prog = program(region)
    t = REAL_TYPES[region.dtype]
    complex_region = region.dtype in COMPLEX_DTYPES
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
            value = f"o{index}"
            if ctype not in COMPLEX_C_TYPES and _adjoint_complex(region, region.outputs[index]):
                value = f"gpuad_real({value})"  # a real target keeps the real part
            if ctype in NARROW_C_TYPES:  # the sum in R, one rounding
                stores.append(f"    if (flags & {bit}u) {name}[{where}] = ({ctype})((R){name}[{where}] + {value}); "
                              f"else {name}[{where}] = ({ctype}){value};")
            else:
                stores.append(f"    if (flags & {bit}u) {name}[{where}] += ({ctype}){value}; "
                              f"else {name}[{where}] = ({ctype}){value};")
        elif role == "in":
            loads[(role, index)] = f"({_input_type(region, index)}){name}[{where}]"
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
    for vtype in ("T", "C"):
        outs = [f"o{o}" for o in prog.written if ("C" if _adjoint_complex(region, region.outputs[o])
                                                  and not complex_region else "T") == vtype]
        if outs:
            body.append(f"    {vtype} " + ", ".join(outs) + ";")
    call = ([loads[("in", j)] for j in prog.used_inputs] + [f"c{j}" for j in range(region.n_consts)]
            + [loads[("seed", i)] for i in prog.live_seeds] + [f"o{o}" for o in prog.written])
    body.append(f"    element({', '.join(call)});")
    body += stores
    args = [p.split()[-1] for p in params[1:]]
    at_params = ["const long long i"] + params[1:]
    at = f"GPUAD_FN void at({', '.join(at_params)}) {{\n" + "\n".join(body) + "\n}"
    return ", ".join(params), ", ".join(args), at


@lru_cache(maxsize=4096)
def kernel_body(spec: KernelSpec) -> str:
    """The generated text both builds share: a namespace with T, ``element`` and ``at``."""
    region = spec.region
    ops = ", ".join(prim.name for prim, _ in region.nodes)
    types = f"typedef {REAL_TYPES[region.dtype]} R;"
    if uses_complex(region):
        types += "\ntypedef gpuad_complex<R> C;"
    types += f"\ntypedef {'C' if region.dtype in COMPLEX_DTYPES else 'R'} T;"
    head = (f"// {spec.name}: cotangents of {len(region.inputs)} input(s) of the elementwise region [{ops}]\n"
            f"namespace {spec.name}_ns {{\n{types}")
    return "\n".join([head, element_source(region), _signature(spec)[2], "}  // namespace"])


@lru_cache(maxsize=4096)
def kernel_source(spec: KernelSpec, target: str = "cuda") -> str:
    """The complete translation unit for ``target`` "cuda" (nvcc, NVRTC) or "cpu" (a host C++ compiler)."""
    params, args, _ = _signature(spec)
    template = string.Template(load_template("elementwise_bwd.cu" if target == "cuda" else "elementwise_bwd.cpp"))
    prelude = load_template("prelude.h")
    if any(ctype in NARROW_C_TYPES for ctype, _ in spec.layouts):
        prelude += "\n" + load_template("prelude_half.h")
    if uses_complex(spec.region) or any(ctype in COMPLEX_C_TYPES for ctype, _ in spec.layouts):
        prelude += "\n" + load_template("prelude_complex.h")
    return template.substitute(prelude=prelude, body=kernel_body(spec), name=spec.name,
                               namespace=f"{spec.name}_ns", params=params, args=args)


def kernel_param_kinds(spec: KernelSpec):
    """The kind of each kernel parameter in order: "i64", "ptr", "f32"/"f64" (a Python scalar), "u32"."""
    kinds = ["i64"] * (1 + spec.ndim)
    for ctype, kind in spec.layouts:
        kinds.append("ptr")
        if kind == "strided":
            kinds += ["i64"] * spec.ndim
    kinds += ["f64" if REAL_TYPES[spec.region.dtype] == "double" else "f32"] * spec.region.n_consts
    kinds.append("u32")
    return kinds


_templates: dict[str, str] = {}


def load_template(name: str) -> str:
    """A file of ``kernels/``: from the source tree this package lies in (a checkout: the templates beside this
    very ``gpuad``, even where an editable install maps ``gpuad.kernels`` to another checkout), else package
    data of the installed ``gpuad.kernels``."""
    text = _templates.get(name)
    if text is None:
        tree = Path(__file__).resolve().parents[2] / "kernels"
        if (tree / "__init__.py").is_file() and (tree / name).is_file():
            text = (tree / name).read_text()
        else:
            from importlib import resources
            text = resources.files("gpuad.kernels").joinpath(name).read_text()
        _templates[name] = text
    return text
