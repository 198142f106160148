"""The fused backward pass of one elementwise region of a tape: gather, evaluate, accumulate.

The tape groups elementwise entries into regions while it records (see ``gpuad.tape``); an entry keeps only its
region-external arguments, so the region's intermediates are not kept alive. At backward time ``run_region``
turns the region's entries into a ``codegen.Region`` (its structure: ops, argument references, which nodes have
an incoming cotangent, which cotangents are wanted), and evaluates the composed adjoint program once:

* on CuPy arrays, as one generated CUDA kernel launched through the backend seam (plus one reduction launch per
  operand that was broadcast: the kernel writes its full-shape cotangent with the reduced axes last, so that
  the reduction runs over contiguous trailing axes, as CuPy's CUB reductions want);
* on NumPy arrays, as the same program rendered to Python (or, when ``host_kernels`` is set, as the CPU build of
  the very kernel the GPU runs, launched through ctypes; the tests use this to check the generated source).

Cotangents are accumulated in place: a written output becomes a node's buffer when it has none, and is added
into the buffer (by the kernel itself, for full-shape buffers the backward pass owns) when it has one.
"""
from __future__ import annotations

import math

import numpy  # dtype bookkeeping only

from . import backend, codegen
from .core import Tensor, is_float_dtype, raw
from .ops.linear import sum_to

# Launch counters (the GPU benchmark reads them): generated kernels, broadcast reductions, adds into existing
# buffers done outside a kernel, and copies made to take ownership of a buffer.
stats = {"regions": 0, "kernels": 0, "reductions": 0, "accumulations": 0, "copies": 0}

# When set (an object with ``launch(spec, kinds, values)``), NumPy regions run the CPU build of their kernels.
host_kernels = None

# Argument references, made once (building a region's structure runs every backward pass)
_V = [("v", k) for k in range(256)]
_I = [("i", k) for k in range(256)]
_C = [("c", k) for k in range(256)]
_dtype_names: dict = {}
_FLOAT64 = numpy.dtype("float64")


def run_region(entries, members, cts, owned, reaches, wanted, log=None):
    """Propagate the cotangents of region ``members`` (tape indices, ascending) to the region's inputs."""
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
        nodes.append((e.prim.name, tuple(refs)))
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
    region = codegen.Region(dtype_name(dtype), shape == (),
                            tuple((_dtype_name(v), _shape(v) == shape) for v in inputs), len(consts), tuple(nodes),
                            tuple(seeded), tuple(outputs))
    targets = [entries[p].out_aval for p in out_nodes]
    stats["regions"] += 1
    module = backend.array_module(*seeds)
    launch = backend.kernel_launcher(module) or (host_kernels.launch if host_kernels is not None else None)
    prog = codegen.program(region)
    if launch is not None and _kernel_ok(region, prog, inputs, seeds, targets, shape):
        _run_kernel(launch, module, region, prog, shape, inputs, consts, seeds, targets, out_nodes, cts, owned,
                    log)
    else:
        if log is not None and _kernel_ok(region, prog, inputs, seeds, targets, shape):
            # what the GPU would run, planned only if someone asks (Tape.kernels): keep layouts, not arrays
            log.append((region, shape, [_Layout(inputs[j]) if j in prog.used_inputs else None
                                        for j in range(len(inputs))],
                        [_Layout(seeds[i]) if i in prog.live_seeds else None for i in range(len(seeds))],
                        targets))
        _run_python(module, region, prog, inputs, consts, seeds, targets, out_nodes, cts, owned)


class _Layout:
    """An array's shape and strides without the array (for planning a kernel after the arrays are gone)."""

    __slots__ = ("shape", "strides", "itemsize", "size", "dtype")

    def __init__(self, a):
        if not hasattr(a, "strides"):  # a Python float: a 0-d float64
            self.shape, self.strides, self.itemsize, self.size, self.dtype = (), (), 8, 1, _FLOAT64
        else:
            self.shape, self.strides, self.itemsize, self.size, self.dtype = (a.shape, a.strides, a.itemsize,
                                                                               a.size, a.dtype)


def spec_of(entry):
    """The KernelSpec of a kernel-log entry (a spec, or a region run by its Python rendering, planned now)."""
    if isinstance(entry, codegen.KernelSpec):
        return entry
    return plan(*entry)[0]


def dtype_name(dtype):
    """``dtype.name``, memoised (NumPy computes it in Python, and the backward pass asks often)."""
    name = _dtype_names.get(dtype)
    if name is None:
        name = _dtype_names[dtype] = dtype.name
    return name


def _dtype_name(v):
    return "float64" if type(v) is float else dtype_name(v.dtype)


def _shape(v):
    return getattr(v, "shape", ())


# ---- evaluation by the Python rendering --------------------------------------------------------------------

def _run_python(module, region, prog, inputs, consts, seeds, targets, out_nodes, cts, owned):
    fn, fresh = codegen.python_function(region, module)
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


# ---- evaluation by a generated kernel ----------------------------------------------------------------------

def _kernel_ok(region, prog, inputs, seeds, targets, shape):
    if region.dtype not in codegen.KERNEL_DTYPES or 0 in shape:
        return False
    if any(_dtype_name(inputs[j]) not in codegen.C_TYPES for j in prog.used_inputs):
        return False
    if any(dtype_name(seeds[i].dtype) not in codegen.C_TYPES for i in prog.live_seeds):
        return False
    return all(dtype_name(targets[o][1]) in codegen.KERNEL_DTYPES for o in prog.written)


def _c_contiguous(shape, strides, itemsize):
    expected = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def layout(a, shape):
    """How a kernel indexes array ``a`` over the broadcast ``shape``: ("full", None), ("scalar", None) or
    ("strided", element strides per axis of ``shape``, 0 along broadcast axes)."""
    ashape = a.shape
    if ashape == shape and _c_contiguous(ashape, a.strides, a.itemsize):
        return "full", None
    if a.size == 1:
        return "scalar", None
    lead = len(shape) - len(ashape)
    strides = [0 if k < lead or ashape[k - lead] == 1 else a.strides[k - lead] // a.itemsize
               for k in range(len(shape))]
    if not any(s for s, n in zip(strides, shape) if n != 1):
        return "scalar", None
    return "strided", strides


def reduction_layout(shape, tshape):
    """The kernel's temporary for the cotangent of an operand of ``tshape`` broadcast to ``shape``: the kept
    axes first and the broadcast axes last, C-contiguous, so the reduction is over contiguous trailing axes.
    Returns (kind, strides over ``shape`` or None, kept size, reduced size)."""
    lead = len(shape) - len(tshape)
    kept = [k for k in range(len(shape)) if shape[k] == 1 or (k >= lead and tshape[k - lead] != 1)]
    reduced = [k for k in range(len(shape)) if k not in kept]
    order = kept + reduced
    strides = [0] * len(shape)
    step = 1
    for k in reversed(order):
        strides[k] = step
        step *= shape[k]
    kept_size = math.prod(shape[k] for k in kept)
    if order == list(range(len(shape))):
        return "full", None, kept_size, step // kept_size
    return "strided", strides, kept_size, step // kept_size


def _collapse(shape, stride_lists):
    """Merge adjacent axes that every strided operand walks contiguously; drop axes of extent 1."""
    dims, merged = [], [[] for _ in stride_lists]
    for k, n in enumerate(shape):
        if n == 1:
            continue
        if dims and all(m[-1] == s[k] * n for m, s in zip(merged, stride_lists)):
            dims[-1] *= n
            for m, s in zip(merged, stride_lists):
                m[-1] = s[k]
            continue
        dims.append(n)
        for m, s in zip(merged, stride_lists):
            m.append(s[k])
    if not dims:
        return [1], [[0] for _ in stride_lists]
    return dims, merged


def plan(region, shape, inputs, seeds, targets):
    """(KernelSpec, collapsed dims, per-operand strides or None, per-output reduction info or None) for the
    region's kernel over these arrays; allocates nothing."""
    prog = codegen.program(region)
    kinds, strides, reductions = [], [], []
    for j in prog.used_inputs:
        a = inputs[j]
        kind, st = layout(a, shape) if hasattr(a, "strides") else ("scalar", None)
        kinds.append((codegen.C_TYPES[_dtype_name(a)], kind))
        strides.append(st)
    for i in prog.live_seeds:
        kind, st = layout(seeds[i], shape)
        kinds.append((codegen.C_TYPES[dtype_name(seeds[i].dtype)], kind))
        strides.append(st)
    for o in prog.written:
        tshape, tdtype = targets[o]
        if tshape == shape:
            kinds.append((codegen.C_TYPES[dtype_name(tdtype)], "full"))
            strides.append(None)
            reductions.append(None)
        else:
            kind, st, kept, red = reduction_layout(shape, tshape)
            kinds.append((codegen.C_TYPES[region.dtype], kind))
            strides.append(st)
            reductions.append((kept, red))
    strided = [s for s in strides if s is not None]
    dims, merged = _collapse(shape, strided) if strided else ([], [])
    it = iter(merged)
    strides = [next(it) if s is not None else None for s in strides]
    spec = codegen.KernelSpec(region, tuple(kinds), len(dims))
    return spec, dims, strides, reductions


def _run_kernel(launch, module, region, prog, shape, inputs, consts, seeds, targets, out_nodes, cts, owned, log):
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
    launch(spec, codegen.kernel_param_kinds(spec), values)
    stats["kernels"] += 1
    for node, tshape, tdtype, temp, kept, red in finish:
        value = module.sum(temp.reshape(kept, red), axis=1).reshape(tshape)
        stats["reductions"] += 1
        if value.dtype != tdtype:
            value = value.astype(tdtype)
        accumulate(cts, owned, node, value, True, module)
