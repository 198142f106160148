"""The C++ rendering of a region's adjoint program: one generated text, two builds (CUDA and CPU).

``kernel_source(spec, target)`` prints the composed program (``program.Program``) as a per-element function
(``element``: the math) and a per-index function (``at``: loads, the call, stores that write or add), and wraps
them with a template of the top-level ``kernels/`` folder (shipped inside the installed package as
``gpuad.kernels``): ``elementwise_bwd.cu``, a CUDA grid-stride kernel, or ``elementwise_bwd.cpp``, a plain CPU
loop. Both builds share every line of the generated text. ``kernel_param_kinds`` says how a launcher passes each
kernel argument.
"""
from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

from .program import KernelSpec, Region, operands, program

C_TYPES = {"float32": "float", "float64": "double", "bool": "bool", "int8": "signed char", "int16": "short",
           "int32": "int", "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
           "uint32": "unsigned int", "uint64": "unsigned long long", "float16": "gpuad_f16", "bfloat16": "gpuad_bf16"}
# Region dtypes the kernels support; others use the Python rendering. The compute type T of a region's math:
# float16/bfloat16 operands are loaded into float and the results rounded once when stored (kernels/prelude_half.h).
KERNEL_DTYPES = ("float32", "float64", "float16", "bfloat16")
COMPUTE_TYPES = {"float32": "float", "float64": "double", "float16": "float", "bfloat16": "float"}
NARROW_C_TYPES = ("gpuad_f16", "gpuad_bf16")  # stored narrow: accumulated as T, then rounded


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
        prim = prog.prims[k]
        lines.append(f"    const T v{k} = (T)({prim.forward.cuda(prog.rename(k, _c_ref))});  // {prim.name}")
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


def _operand_name(role, index):
    return {"in": "in", "seed": "sd", "out": "out"}[role] + str(index)


@lru_cache(maxsize=4096)
def _signature(spec: KernelSpec):
    """(kernel parameters, argument names after n, body of ``at``) for a spec."""
    region = spec.region
    prog = program(region)
    t = COMPUTE_TYPES[region.dtype]
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
            if ctype in NARROW_C_TYPES:  # the sum in T, one rounding
                stores.append(f"    if (flags & {bit}u) {name}[{where}] = ({ctype})((T){name}[{where}] + o{index}); "
                              f"else {name}[{where}] = ({ctype})o{index};")
            else:
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


@lru_cache(maxsize=4096)
def kernel_body(spec: KernelSpec) -> str:
    """The generated text both builds share: a namespace with T, ``element`` and ``at``."""
    region = spec.region
    ops = ", ".join(prim.name for prim, _ in region.nodes)
    head = (f"// {spec.name}: cotangents of {len(region.inputs)} input(s) of the elementwise region [{ops}]\n"
            f"namespace {spec.name}_ns {{\ntypedef {COMPUTE_TYPES[region.dtype]} T;")
    return "\n".join([head, element_source(region), _signature(spec)[2], "}  // namespace"])


@lru_cache(maxsize=4096)
def kernel_source(spec: KernelSpec, target: str = "cuda") -> str:
    """The complete translation unit for ``target`` "cuda" (nvcc, NVRTC) or "cpu" (a host C++ compiler)."""
    params, args, _ = _signature(spec)
    template = string.Template(load_template("elementwise_bwd.cu" if target == "cuda" else "elementwise_bwd.cpp"))
    prelude = load_template("prelude.h")
    if any(ctype in NARROW_C_TYPES for ctype, _ in spec.layouts):
        prelude += "\n" + load_template("prelude_half.h")
    return template.substitute(prelude=prelude, body=kernel_body(spec), name=spec.name,
                               namespace=f"{spec.name}_ns", params=params, args=args)


def kernel_param_kinds(spec: KernelSpec):
    """The kind of each kernel parameter in order: "i64", "ptr", "f32"/"f64" (a Python scalar), "u32"."""
    kinds = ["i64"] * (1 + spec.ndim)
    for ctype, kind in spec.layouts:
        kinds.append("ptr")
        if kind == "strided":
            kinds += ["i64"] * spec.ndim
    kinds += ["f64" if spec.region.dtype == "float64" else "f32"] * spec.region.n_consts
    kinds.append("u32")
    return kinds


_templates: dict[str, str] = {}


def load_template(name: str) -> str:
    """A file of ``kernels/``: package data of the installed ``gpuad.kernels``, else from the source tree."""
    text = _templates.get(name)
    if text is None:
        try:
            from importlib import resources
            text = resources.files("gpuad.kernels").joinpath(name).read_text()
        except (ModuleNotFoundError, FileNotFoundError):
            text = (Path(__file__).resolve().parents[2] / "kernels" / name).read_text()
        _templates[name] = text
    return text
