"""Running one region in the backward pass: gather its structure and arrays, evaluate its adjoint program once,
accumulate the cotangents it produces.

``run_region`` turns a region's tape entries into a ``program.Region`` (rows, argument references, which nodes
have an incoming cotangent, which cotangents are wanted) and evaluates the composed program:

* with a launcher (``launchers``: CUDA for CuPy arrays by default, or the one the caller passed, such as the host
  launcher for NumPy arrays), as one generated kernel, plus one reduction per operand that was broadcast (the
  kernel writes that operand's cotangent over the region's full shape into a C-contiguous temporary, at index i
  like every full operand, so its writes are coalesced; the temporary is then summed over the broadcast axes,
  ``layout.reduction_layout``). When the region's kernel is not compiled yet, the kernels the rest of the pass
  will most likely need are compiled with it, in one compiler run (``predict``, ``launcher.prepare``);
* without one (NumPy by default), as the Python rendering of the same program (``render_python``).

Cotangents are accumulated in place by ``accumulate``, the one accumulation rule of the backward pass (the tape
uses it for every other entry too): a written output becomes a node's buffer when it has none, and is added
into the buffer (by the kernel itself, for full-shape buffers the backward pass owns) when it has one.
``stats`` counts launches, for the GPU benchmark.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy  # dtype objects by name (NumPy's and CuPy's functions take them)

from .. import backend
from ..core import Tensor, is_float_dtype, raw
from ..ops.linear import sum_to
from .launchers import default_launcher
from .layout import Layout, dtype_name, layout, plan, value_dtype_name
from .program import KernelSpec, program, region_of
from .render_cpp import C_TYPES, COMPLEX_DTYPES, KERNEL_DTYPES, kernel_param_kinds, temporary_dtype
from .render_python import python_function

# Launch counters (the GPU benchmark reads them): regions run, generated kernels, broadcast reductions, adds
# into existing buffers done outside a kernel, and copies made to take ownership of a buffer.
stats = {"regions": 0, "kernels": 0, "reductions": 0, "accumulations": 0, "copies": 0}

# Argument references, made once (building a region's structure runs every backward pass)
_V = [("v", k) for k in range(256)]
_I = [("i", k) for k in range(256)]
_C = [("c", k) for k in range(256)]


def run_region(entries, members, cts, owned, reaches, wanted, log=None, launcher=None, groups=None, cache=None,
               key=None):
    """Propagate the cotangents of region ``members`` (tape indices, ascending) to the region's inputs.

    ``entries``: the tape's entries (each with ``prim``, ``parents``, ``saved``: its arguments, None for the
    region-internal ones, and ``out_aval``); ``cts``/``owned``: the cotangent buffers by node and whether the
    pass owns them (updated in place); ``reaches``: whether a node reaches a wanted source; ``wanted``: the
    source nodes; ``log``: a list collecting what each kernel is (``spec_of`` reads it); ``launcher``: the
    launcher for these arrays (None: ``launchers.default_launcher``); ``groups``: the pass's regions by last
    member (when this region's kernel is not compiled yet, the kernels the regions still to run will most likely
    need are compiled with it, in one batch: ``predict``); ``cache``: a dict kept by a persistent tape across its
    backward passes, for the region's structure (by last member, seeded members and ``key``, which stands for
    ``wanted``) and its kernel plan (by the seeds' shapes, strides and dtypes)."""
    seeded, seeds = [], []
    for m in members:
        ct = cts[m]
        if ct is not None:
            seeded.append(m)
            seeds.append(ct)
            if m not in wanted:
                cts[m] = None
    if not seeds:
        return
    module = backend.array_module(*seeds)
    if launcher is None:
        launcher = default_launcher(module)
    elif launcher.runs_on != module.__name__:
        raise ValueError(f"the launcher {type(launcher).__name__} runs {launcher.runs_on} arrays, but this "
                         f"region's are {module.__name__} arrays")
    unit = () if launcher is not None else _unit_seeds(seeds)
    if cache is not None:
        ckey = (members[-1], tuple(seeded), key, unit)
        built = cache.get(ckey)
        if built is None:
            built = cache[ckey] = _structure(entries, members, seeded, reaches, wanted, unit) or ()
    else:
        built = _structure(entries, members, seeded, reaches, wanted, unit)
    if not built:
        return
    region, shape, inputs, consts, out_nodes, targets = built
    stats["regions"] += 1
    prog = program(region)
    planned = None
    if launcher is not None:
        if cache is not None:
            pkey = (ckey, tuple([(s.shape, s.strides, s.dtype) for s in seeds]))
            planned = cache.get(pkey)
            if planned is None:
                planned = cache[pkey] = _plan(region, prog, shape, inputs, seeds, targets)
        else:
            planned = _plan(region, prog, shape, inputs, seeds, targets)
    if planned:
        more = None
        if groups:
            last = members[-1]
            more = lambda: predict(entries, groups, last, cts, reaches, wanted)  # noqa: E731
        _run_kernel(launcher, module, region, prog, shape, inputs, consts, seeds, targets, out_nodes, cts, owned,
                    log, more, planned)
    else:
        if log is not None:
            # what the GPU would run, checked and planned only if someone asks (Tape.kernels, spec_of): keep
            # layouts, not arrays
            log.append((region, shape, [Layout(inputs[j]) if j in prog.used_inputs else None
                                        for j in range(len(inputs))],
                        [Layout(seeds[i]) if i in prog.live_seeds else None for i in range(len(seeds))],
                        targets))
        _run_python(module, region, prog, inputs, consts, seeds, targets, out_nodes, cts, owned)


def _plan(region, prog, shape, inputs, seeds, targets):
    """``layout.plan`` of the region's kernel over these arrays, or () when no kernel can run it."""
    if not _kernel_ok(region, prog, inputs, seeds, targets, shape):
        return ()
    return plan(region, shape, inputs, seeds, targets)


def _unit_seeds(seeds):
    """The indices of the seeds that are host arrays of ones by broadcast (every stride 0: the ``sum`` of a
    gradient's seed 1), which the Python rendering folds away (``Region.unit_seeds``)."""
    unit = ()
    for i, s in enumerate(seeds):
        if backend.is_host_array(s) and s.ndim and s.size and not any(s.strides) and s.item(0) == 1:
            unit += (i,)
    return unit


def _structure(entries, members, seeded, reaches, wanted, unit=()):
    """(region, shape, inputs, consts, out_nodes, targets) of region ``members`` whose nodes ``seeded`` have an
    incoming cotangent (those at the indices ``unit`` known to be 1 everywhere), or None when it produces no
    wanted cotangent."""
    shape, dtype = entries[members[0]].out_aval
    local = dict(zip(members, range(len(members))))  # member -> its index in the region
    inputs, input_nodes, keys, consts, nodes, given = [], [], {}, [], [], []
    scalars, V = backend.PYTHON_SCALARS, _V
    for e in map(entries.__getitem__, members):
        refs = []
        for p, v in zip(e.parents, e.saved):
            if v is None:
                k = local[p]
                refs.append(V[k] if k < 256 else ("v", k))
            elif p in local:  # a member's value the tape kept (``RegionBuilder.join``): read, not recomputed
                # (under vmap with the batch axis of length 1 in front: a broadcast input)
                k = local[p]
                refs.append(V[k] if k < 256 else ("v", k))
                if p not in keys:
                    keys[p] = len(inputs)
                    given.append((k, len(inputs)))
                    inputs.append(raw(v) if isinstance(v, Tensor) else v)
                    input_nodes.append(None)  # its adjoint flows through node k, not out as a cotangent
            elif type(v) in scalars:
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
        nodes.append((e.prim, tuple(refs)))
    outputs, out_nodes = [], []
    for j, p in enumerate(input_nodes):
        if p is not None and reaches[p] and is_float_dtype(entries[p].out_aval[1]):
            outputs.append(_I[j] if j < 256 else ("i", j))
            out_nodes.append(p)
    for m in (members if len(members) <= len(wanted) else sorted(m for m in wanted if m in local)):
        if m in wanted:  # (ascending, from whichever of the two is shorter)
            outputs.append(("v", local[m]))
            out_nodes.append(m)
    if not outputs:
        return None
    region = region_of(dtype_name(dtype), shape == (),
                       tuple([(value_dtype_name(v), _shape(v) == shape) for v in inputs]), len(consts),
                       tuple(nodes), tuple([local[m] for m in seeded]), tuple(outputs), tuple(given), unit)
    return region, shape, inputs, consts, out_nodes, [entries[p].out_aval for p in out_nodes]


def predict(entries, groups, current, cts, reaches, wanted):
    """The KernelSpecs the regions of ``groups`` ({last member: members}, the pass's regions) that run after the
    one ending at ``current`` will most likely need, planned before their cotangents exist. A member is seeded
    when it has a cotangent already or will get one from an entry outside its region, and a cotangent that does
    not exist yet is guessed by ``_guess_layout``. A wrong guess costs one more compile later, never a wrong
    result: the kernel each region runs is planned from its real arrays."""
    todo = [g for k, g in groups.items() if k < current]
    if not todo:
        return []
    last_of = {m: k for k, members in groups.items() for m in members}
    low = min(min(g) for g in todo)
    consumers: dict = {}  # node -> the reaching entries outside its region that use it
    inner: dict = {}      # region member -> the members of its region that use it
    for j in range(low, len(entries)):
        if reaches[j]:
            here = last_of.get(j)
            for p in entries[j].parents:
                if p is not None and p >= low and reaches[p]:
                    users = (inner if here is not None and last_of.get(p) == here else consumers).setdefault(p, [])
                    if not users or users[-1] != j:
                        users.append(j)
    guess = _Guess(entries, cts, consumers, inner, last_of, current)
    specs = []
    for members in todo:
        try:
            seeds = {m: guess.layout(m) for m in members}
            seeded = [m for m in members if seeds[m] is not None]
            if not seeded:
                continue
            built = _structure(entries, members, seeded, reaches, wanted)
            if built is None:
                continue
            region, shape, inputs, consts, out_nodes, targets = built
            seeds = [seeds[m] for m in seeded]
            prog = program(region)
            if _kernel_ok(region, prog, inputs, seeds, targets, shape):
                specs.append(plan(region, shape, inputs, seeds, targets)[0])
        except Exception:  # a guess only: the region plans its own kernel when it runs
            continue
    return specs


class _Guess:
    """The layout a node's cotangent will have when the reverse walk reaches it (``layout``; None: it gets
    none): the real one when every entry that uses the node has run; else a new C-contiguous array (what most
    rules, the kernels and every accumulation of two contributions make), except for the views the linear rules
    hand on from their own cotangent: ``sum`` (a broadcast: stride 0 along the summed axes), ``reshape`` and
    ``transpose``."""

    def __init__(self, entries, cts, consumers, inner, last_of, current):
        self.entries, self.cts, self.consumers, self.inner = entries, cts, consumers, inner
        self.last_of, self.current = last_of, current
        self.memo, self.live = {}, {}

    def gets(self, j):
        """Whether entry j will have a nonzero adjoint to hand on (so its arguments get cotangents from it): its
        own cotangent, or, in a region, a member of its region using it that has one; every member of the region
        running now is taken to have one."""
        live = self.live
        if j not in live:
            live[j] = False
            last = self.last_of.get(j)
            live[j] = (last == self.current or self.layout(j) is not None
                       or (last is not None and any(self.gets(k) for k in self.inner.get(j, ()))))
        return live[j]

    def layout(self, node):
        memo = self.memo
        if node not in memo:
            memo[node] = None
            memo[node] = self._layout(node)
        return memo[node]

    def _layout(self, node):
        shape, dtype = self.entries[node].out_aval
        ct = self.cts[node]
        pending = [j for j in self.consumers.get(node, ())
                   if self.last_of.get(j, j) <= self.current and self.gets(j)]
        if ct is not None:
            return Layout(ct) if not pending else Layout.full(shape, dtype)
        if not pending:
            return None
        if len(pending) > 1:
            return Layout.full(shape, dtype)
        j = pending[0]
        e = self.entries[j]
        name = getattr(e.prim, "name", None)
        if j in self.last_of or name not in ("sum", "reshape", "transpose") or len(e.parents) != 1:
            return Layout.full(shape, dtype)
        out = self.layout(j)
        if out is None:
            return None
        if name == "transpose":
            axes = e.params["axes"]
            inverse = sorted(range(len(axes)), key=axes.__getitem__)
            return Layout.of(shape, [out.strides[inverse[k]] for k in range(len(shape))], dtype)
        if name == "reshape":
            return _reshaped(out, shape, dtype)
        axis, keepdims = e.params["axis"], e.params["keepdims"]
        kept = tuple(1 if k in axis else n for k, n in enumerate(shape))
        if not keepdims:
            out = _reshaped(out, kept, dtype)
        return Layout.of(shape, [0 if kept[k] == 1 else s for k, s in enumerate(out.strides)], dtype)


def _reshaped(layout, shape, dtype):
    """The layout of ``layout`` reshaped to ``shape`` as NumPy does it: a view when only axes of extent 1 come or
    go (or every stride is 0), else a C-contiguous array."""
    if not any(layout.strides):
        return Layout.of(shape, [0] * len(shape), dtype)
    src = [(n, st) for n, st in zip(layout.shape, layout.strides) if n != 1]
    if [n for n, _ in src] != [n for n in shape if n != 1]:
        return Layout.full(shape, dtype)
    it = iter(src)
    return Layout.of(shape, [0 if n == 1 else next(it)[1] for n in shape], dtype)


def spec_of(entry):
    """The KernelSpec of a kernel-log entry (a spec, or a region run by its Python rendering, planned now), or
    None for a region no kernel can run (its dtypes)."""
    if isinstance(entry, KernelSpec):
        return entry
    region, shape, inputs, seeds, targets = entry
    if not _kernel_ok(region, program(region), inputs, seeds, targets, shape):
        return None
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
    # division by a constant 0 gives inf, as NumPy does, rather than ZeroDivisionError. One array per constant
    # object (a loop's literal is one object, used by every iteration); the program never writes into them.
    dtype, made, arrays = _dtype(region.dtype), {}, []
    for c in consts:
        a = made.get(id(c))
        if a is None:
            a = made[id(c)] = module.asarray(c, dtype=dtype)
        arrays.append(a)
    consts = arrays
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
    if region.dtype not in COMPLEX_DTYPES and any(seeds[i].dtype.kind == "c" for i in prog.live_seeds):
        return False  # (a complex cotangent of a real value: the Python rendering)
    return all(dtype_name(targets[o][1]) in KERNEL_DTYPES for o in prog.written)


def _run_kernel(launcher, module, region, prog, shape, inputs, consts, seeds, targets, out_nodes, cts, owned,
                log, more, planned):
    inputs, seeds = list(inputs), list(seeds)  # NumPy gives scalars for 0-d results: kernels want arrays
    ndarray = module.ndarray
    for j in prog.used_inputs:
        if not isinstance(inputs[j], ndarray):
            inputs[j] = module.asarray(inputs[j])
    for i in prog.live_seeds:
        if not isinstance(seeds[i], ndarray):
            seeds[i] = module.asarray(seeds[i])
    spec, dims, strides, reductions = planned
    if log is not None:
        log.append(spec)
    if not launcher.ready(spec):  # compile it with what the rest of the pass will most likely need: one batch
        launcher.prepare([spec, *(more() if more is not None else ())])
    arrays = [inputs[j] for j in prog.used_inputs] + [seeds[i] for i in prog.live_seeds]
    flags = 0
    finish = []
    for bit, (o, reduction) in enumerate(zip(prog.written, reductions)):
        node = out_nodes[o]
        tshape, tdtype = targets[o]
        if reduction is not None:  # a full-shape temporary the kernel writes at index i, summed afterwards
            temp = module.empty(shape, dtype=temporary_dtype(region, dtype_name(tdtype)))
            arrays.append(temp)
            finish.append((node, tshape, tdtype, temp, reduction))
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
    values = [math.prod(shape), *dims]
    for a, st in zip(arrays, strides):
        values.append(a)
        if st is not None:
            values.extend(st)
    values.extend(consts)
    values.append(flags)
    launcher.launch(spec, _param_kinds(spec), values)
    stats["kernels"] += 1
    for node, tshape, tdtype, temp, (grouped, axes) in finish:
        value = temp.reshape(grouped).sum(axis=axes, dtype=ACCUMULATOR.get(temp.dtype.name)).reshape(tshape)
        stats["reductions"] += 1
        if value.dtype != tdtype:
            value = value.astype(tdtype)
        accumulate(cts, owned, node, value, True, module)


# float16/bfloat16 temporaries are summed in float32 (rounded once, to the cotangent's dtype)
ACCUMULATOR = {"float16": "float32", "bfloat16": "float32"}


@lru_cache(maxsize=64)
def _dtype(name):
    return numpy.dtype(name)


@lru_cache(maxsize=4096)
def _param_kinds(spec):
    return kernel_param_kinds(spec)
