"""Running one region in the backward pass: gather its structure and arrays, evaluate its adjoint program once,
accumulate the cotangents it produces.

``run_region`` turns a region's tape entries into a ``program.Region`` (rows, argument references, which nodes
have an incoming cotangent, which cotangents are wanted) and evaluates the composed program:

* with a launcher (``launchers``: CUDA for CuPy arrays by default, or the one the caller passed, such as the host
  launcher for NumPy arrays), as one generated kernel, plus one reduction per operand that was broadcast (the
  kernel writes its full-shape cotangent with the reduced axes last);
* without one (NumPy by default), as the Python rendering of the same program (``render_python``).

Cotangents are accumulated in place by ``accumulate``, the one accumulation rule of the backward pass (the tape
uses it for every other entry too): a written output becomes a node's buffer when it has none, and is added
into the buffer (by the kernel itself, for full-shape buffers the backward pass owns) when it has one.
``stats`` counts launches, for the GPU benchmark.
"""
from __future__ import annotations

import math

from .. import backend
from ..core import Tensor, is_float_dtype, raw
from ..ops.linear import sum_to
from .launchers import default_launcher
from .layout import Layout, dtype_name, layout, plan, value_dtype_name
from .program import KernelSpec, Region, program
from .render_cpp import C_TYPES, KERNEL_DTYPES, kernel_param_kinds
from .render_python import python_function

# Launch counters (the GPU benchmark reads them): regions run, generated kernels, broadcast reductions, adds
# into existing buffers done outside a kernel, and copies made to take ownership of a buffer.
stats = {"regions": 0, "kernels": 0, "reductions": 0, "accumulations": 0, "copies": 0}

# Argument references, made once (building a region's structure runs every backward pass)
_V = [("v", k) for k in range(256)]
_I = [("i", k) for k in range(256)]
_C = [("c", k) for k in range(256)]


def run_region(entries, members, cts, owned, reaches, wanted, log=None, launcher=None):
    """Propagate the cotangents of region ``members`` (tape indices, ascending) to the region's inputs.

    ``entries``: the tape's entries (each with ``prim``, ``parents``, ``saved``: its arguments, None for the
    region-internal ones, and ``out_aval``); ``cts``/``owned``: the cotangent buffers by node and whether the
    pass owns them (updated in place); ``reaches``: whether a node reaches a wanted source; ``wanted``: the
    source nodes; ``log``: a list collecting what each kernel is (``spec_of`` reads it); ``launcher``: the
    launcher for these arrays (None: ``launchers.default_launcher``)."""
    shape, dtype = entries[members[0]].out_aval
    local = {}
    inputs, input_nodes, keys, consts, nodes = [], [], {}, [], []
    for m in members:
        e = entries[m]
        refs = []
        for p, v in zip(e.parents, e.saved):
            if v is None:
                k = local[p]
                refs.append(_V[k] if k < 256 else ("v", k))
            elif type(v) in backend.PYTHON_SCALARS:
                k = len(consts)
                refs.append(_C[k] if k < 256 else ("c", k))
                consts.append(v)
            else:
                key = p if p is not None else id(v)
                j = keys.get(key)
                if j is None:
                    j = keys[key] = len(inputs)
                    inputs.append(raw(v) if isinstance(v, Tensor) else v)
                    input_nodes.append(p)
                refs.append(_I[j] if j < 256 else ("i", j))
        local[m] = len(nodes)
        nodes.append((e.prim, tuple(refs)))
    seeded, seeds = [], []
    for m in members:
        ct = cts[m]
        if ct is not None:
            seeded.append(local[m])
            seeds.append(ct)
            if m not in wanted:
                cts[m] = None
    if not seeds:
        return
    outputs, out_nodes = [], []
    for j, p in enumerate(input_nodes):
        if p is not None and reaches[p] and is_float_dtype(entries[p].out_aval[1]):
            outputs.append(("i", j))
            out_nodes.append(p)
    for m in members:
        if m in wanted:
            outputs.append(("v", local[m]))
            out_nodes.append(m)
    if not outputs:
        return
    region = Region(dtype_name(dtype), shape == (),
                    tuple((value_dtype_name(v), _shape(v) == shape) for v in inputs), len(consts), tuple(nodes),
                    tuple(seeded), tuple(outputs))
    targets = [entries[p].out_aval for p in out_nodes]
    stats["regions"] += 1
    module = backend.array_module(*seeds)
    if launcher is None:
        launcher = default_launcher(module)
    elif launcher.runs_on != module.__name__:
        raise ValueError(f"the launcher {type(launcher).__name__} runs {launcher.runs_on} arrays, but this "
                         f"region's are {module.__name__} arrays")
    prog = program(region)
    if launcher is not None and _kernel_ok(region, prog, inputs, seeds, targets, shape):
        _run_kernel(launcher, module, region, prog, shape, inputs, consts, seeds, targets, out_nodes, cts, owned,
                    log)
    else:
        if log is not None and _kernel_ok(region, prog, inputs, seeds, targets, shape):
            # what the GPU would run, planned only if someone asks (Tape.kernels): keep layouts, not arrays
            log.append((region, shape, [Layout(inputs[j]) if j in prog.used_inputs else None
                                        for j in range(len(inputs))],
                        [Layout(seeds[i]) if i in prog.live_seeds else None for i in range(len(seeds))],
                        targets))
        _run_python(module, region, prog, inputs, consts, seeds, targets, out_nodes, cts, owned)


def spec_of(entry):
    """The KernelSpec of a kernel-log entry (a spec, or a region run by its Python rendering, planned now)."""
    if isinstance(entry, KernelSpec):
        return entry
    return plan(*entry)[0]


def _shape(v):
    return getattr(v, "shape", ())


def accumulate(cts, owned, node, value, fresh, module):
    """Add ``value`` into node's cotangent buffer (the one accumulation rule of the backward pass): it becomes
    the buffer when there is none (owned when ``fresh``: a new array, not an incoming cotangent or a view of
    one), is added in place into an owned buffer, and replaces a shared one by a new sum. ``module`` None means
    traced values, which are never added into in place."""
    buf = cts[node]
    if buf is None:
        cts[node] = value
        owned[node] = fresh and module is not None and backend.is_private_buffer(value, module)
    elif owned[node]:
        buf += value
        stats["accumulations"] += 1
    else:
        cts[node] = buf + value
        owned[node] = module is not None and backend.is_private_buffer(cts[node], module)
        stats["accumulations"] += 1


# ---- evaluation by the Python rendering --------------------------------------------------------------------

def _run_python(module, region, prog, inputs, consts, seeds, targets, out_nodes, cts, owned):
    fn, fresh = python_function(region, module)
    seeds = [s if dtype_name(s.dtype) == region.dtype else s.astype(region.dtype) for s in seeds]
    # Python-scalar constants as 0-d arrays of the region's dtype (the dtype they took part in), so that a
    # division by a constant 0 gives inf, as NumPy does, rather than ZeroDivisionError.
    consts = [module.asarray(c, dtype=region.dtype) for c in consts]
    results = fn(*inputs, *consts, *seeds)
    for value, o, is_fresh in zip(results, prog.written, fresh):
        node = out_nodes[o]
        tshape, tdtype = targets[o]
        if region.outputs[o][0] == "v":  # a source inside the region: its total adjoint replaces the buffer
            cts[node] = value
            owned[node] = is_fresh and backend.is_private_buffer(value, module)
            continue
        if _shape(value) != tshape or value.dtype != tdtype:
            value = sum_to(value, tshape, tdtype)  # a broadcast operand: summed back; a new array either way
            is_fresh = True
        accumulate(cts, owned, node, value, is_fresh, module)


# ---- evaluation by a generated kernel ----------------------------------------------------------------------

def _kernel_ok(region, prog, inputs, seeds, targets, shape):
    if region.dtype not in KERNEL_DTYPES or 0 in shape:
        return False
    if any(value_dtype_name(inputs[j]) not in C_TYPES for j in prog.used_inputs):
        return False
    if any(dtype_name(seeds[i].dtype) not in C_TYPES for i in prog.live_seeds):
        return False
    return all(dtype_name(targets[o][1]) in KERNEL_DTYPES for o in prog.written)


def _run_kernel(launcher, module, region, prog, shape, inputs, consts, seeds, targets, out_nodes, cts, owned,
                log):
    inputs, seeds = list(inputs), list(seeds)  # NumPy gives scalars for 0-d results: kernels want arrays
    for j in prog.used_inputs:
        if not isinstance(inputs[j], module.ndarray):
            inputs[j] = module.asarray(inputs[j])
    for i in prog.live_seeds:
        if not isinstance(seeds[i], module.ndarray):
            seeds[i] = module.asarray(seeds[i])
    spec, dims, strides, reductions = plan(region, shape, inputs, seeds, targets)
    if log is not None:
        log.append(spec)
    arrays = [inputs[j] for j in prog.used_inputs] + [seeds[i] for i in prog.live_seeds]
    flags = 0
    finish = []
    for bit, (o, reduction) in enumerate(zip(prog.written, reductions)):
        node = out_nodes[o]
        tshape, tdtype = targets[o]
        if reduction is not None:
            kept, red = reduction
            temp = module.empty(kept * red, dtype=region.dtype)
            arrays.append(temp)
            finish.append((node, tshape, tdtype, temp, kept, red))
            continue
        buf = cts[node] if region.outputs[o][0] == "i" else None
        if buf is None:
            buf = module.empty(shape, dtype=tdtype)
            cts[node], owned[node] = buf, True
        else:
            if not (owned[node] and buf.dtype == tdtype and layout(buf, shape)[0] == "full"):
                private = module.empty(shape, dtype=tdtype)
                module.copyto(private, buf)
                stats["copies"] += 1
                buf = cts[node] = private
                owned[node] = True
            flags |= 1 << bit
        arrays.append(buf)
    n = math.prod(shape)
    values = [n, *dims]
    for a, st in zip(arrays, strides):
        values.append(a)
        if st is not None:
            values.extend(st)
    values.extend(consts)
    values.append(flags)
    launcher.launch(spec, kernel_param_kinds(spec), values)
    stats["kernels"] += 1
    for node, tshape, tdtype, temp, kept, red in finish:
        value = module.sum(temp.reshape(kept, red), axis=1).reshape(tshape)
        stats["reductions"] += 1
        if value.dtype != tdtype:
            value = value.astype(tdtype)
        accumulate(cts, owned, node, value, True, module)
