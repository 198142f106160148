"""Reverse mode: the array-level tape (a Wengert list) and the backward pass that walks it.

Recording appends one ``TapeEntry`` per primitive applied to a watched value: the primitive, the tape nodes of
its arguments, the few values its rule saves, and the arguments' shapes and dtypes. ``backward`` walks the
entries once in reverse, skips every entry that cannot reach a requested source, and accumulates each
argument's cotangent in place into one buffer per value: the first contribution is stored as it is, later
ones are added into it (``+=``) once the buffer is known to be private. When an outer transform is recording,
the same rules run on traced values instead, so the backward pass is itself differentiable. ``Tape`` is both
the context-manager API and the trace that ``grad``/``vjp`` use internally.

Elementwise entries are grouped into regions as they are recorded, by the tape's ``RegionBuilder`` (package
``gpuad.fusion``): the tape tells it of every entry (``join`` for elementwise ones, which says what the entry
saves: only its region-external arguments, so a region's intermediates are freed during the forward pass;
``close`` for the others). The backward pass asks it for the regions (``groups``) and runs each as one fused
program when the reverse walk reaches its last entry (``run_region``: one generated kernel on the GPU, through
the tape's launcher or the default one for the arrays). When the backward pass is traced, region entries run
their per-op rules instead, on values recomputed with traced ops (``rule_inputs``).
"""
from __future__ import annotations

import os

from . import backend
from .core import aval, bind, is_float_dtype, lower, raw, state, Tensor, Trace
from .fusion.regions import RegionBuilder, rule_inputs
from .fusion.render_cpp import kernel_source
from .fusion.run import accumulate, run_region, spec_of
from .rules import Elementwise

# Record elementwise regions (set GPUAD_FUSION=0, or call set_fusion(False), for one entry per op saving what
# its rule reads, as without fusion).
_fusion = os.environ.get("GPUAD_FUSION", "1").strip() not in ("0", "off", "false", "no")


def set_fusion(enabled: bool) -> bool:
    """Turn the recording of fused elementwise regions on or off for tapes recorded from now on; returns the
    previous setting."""
    global _fusion
    previous, _fusion = _fusion, bool(enabled)
    return previous


class TapeEntry:
    """One line of the Wengert list: ``out = prim(args)`` with what the backward pass needs."""

    __slots__ = ("prim", "parents", "saved", "params", "avals", "label", "out_aval")

    def __init__(self, prim, parents, saved, params, avals, out_aval, label=None):
        self.prim = prim          # None for an input
        self.parents = parents    # tape node of each argument, None for constants
        self.saved = saved        # values the VJP reads (inputs by name, or the output); for a region entry, its
        #                           arguments with None in place of the region-internal ones
        self.params = params
        self.avals = avals        # (shape, dtype) of each argument
        self.out_aval = out_aval
        self.label = label        # "x1" for inputs; {position: value} of Python-scalar arguments otherwise


_open_tapes: list["Tape"] = []  # Tapes inside their ``with`` block, outermost first


class Tape(Trace):
    """Records operations on watched values for reverse mode.

    ``with gpuad.Tape() as tape: y = f(tape.watch(x))`` then ``tape.gradient(y, x)``. A non-persistent tape
    frees its saved arrays after the first ``gradient`` call; ``persistent=True`` keeps them for more calls.
    ``launcher`` runs the fused regions' kernels (``gpuad.fusion.HostLauncher()``: the CPU build of the
    kernels on NumPy arrays); by default CuPy arrays use the CUDA launcher and NumPy arrays the Python rendering.
    """

    def __init__(self, persistent=False, launcher=None):
        super().__init__()
        self.persistent = persistent
        self.launcher = launcher
        self.entries: list[TapeEntry] = []
        self.regions = RegionBuilder()  # the elementwise regions of the entries (gpuad.fusion.regions)
        self.freed = False  # a non-persistent tape drops its saved arrays after its first gradient()
        self._outputs: dict[int, str] = {}
        self._inputs = 0
        self._kernel_log = None

    # ---- context manager
    def __enter__(self):
        self.start()
        _open_tapes.append(self)
        return self

    def __exit__(self, *exc):
        self.stop()
        _open_tapes.remove(self)
        return False

    # ---- recording
    def watch(self, value):
        """Watch ``value`` on this tape and return it as a Tensor. A gpuad Tensor is watched in place (so the
        same Python object can be passed to ``gradient``); a plain array is wrapped in a new Tensor."""
        self._check_open("watch")
        if type(value) is Tensor:
            if value._trace is self:
                return value
            if value._trace is None or not value._trace.active:
                value._trace, value._node = self, self._add_input(value._primal)
            elif value._trace.level < self.level:
                # Box the outer level's identity one level down, and make ``value`` this tape's.
                inner = Tensor(value._trace, value._primal, value._node, value._tangent)
                value._trace, value._primal, value._node, value._tangent = self, inner, self._add_input(inner), None
            else:
                raise ValueError("cannot watch a value of a Tape opened inside this one from the outer Tape; "
                                 "watch it on the outer Tape first")
            return value
        module = backend.array_module(value)
        return self.box_input(value if isinstance(value, module.ndarray) else module.asarray(value))

    def box_input(self, value):
        """A new Tensor for ``value`` as an input of this tape (``value`` itself is left untouched)."""
        return Tensor(self, value, self._add_input(value))

    def _add_input(self, primal, label=None):
        self._inputs += 1
        self.entries.append(TapeEntry(None, (), (), None, (), aval(primal), label or f"x{self._inputs}"))
        return len(self.entries) - 1

    def process(self, prim, args, params):
        if state.no_grad_depth:
            return bind(prim, [lower(a, self) for a in args], params)
        primals, parents = [], []
        constants = None  # Python-scalar arguments, kept only to print the tape
        for a in args:
            if type(a) is Tensor and a._trace is self:
                primals.append(a._primal)
                parents.append(a._node)
            else:
                if type(a) is float or type(a) is int:
                    constants = constants or {}
                    constants[len(primals)] = a
                primals.append(a)
                parents.append(None)
        out = bind(prim, primals, params)
        out_aval = aval(out)
        if not is_float_dtype(out_aval[1]):
            return out  # integer and boolean results carry no derivative
        for k in prim.nondiff:
            parents[k] = None
        entries = self.entries
        if _fusion and isinstance(prim, Elementwise):
            avals = [aval(p) for p in primals]
            saved = self.regions.join(len(entries), parents, primals, avals, out_aval)
            entries.append(TapeEntry(prim, parents, saved, params, avals, out_aval, constants))
        else:
            self.regions.close(parents)
            entries.append(TapeEntry(prim, parents, prim.save(primals, out), params,
                                     [aval(p) for p in primals], out_aval, constants))
        return Tensor(self, out, len(entries) - 1)

    def _check_open(self, what):
        if self.freed:
            raise RuntimeError(
                f"cannot {what}: this non-persistent Tape already ran gradient() and freed its saved arrays; "
                f"use gpuad.Tape(persistent=True) to call gradient() more than once")

    # ---- the backward pass
    def gradient(self, target, sources, output_gradients=None):
        """d target / d sources, by one reverse pass. ``sources`` may be one value or a (nested) list/tuple/dict
        of them; the result has the same structure. A source the target does not depend on gets zeros.
        ``output_gradients`` seeds the pass (default: ones, i.e. the gradient of sum(target))."""
        from . import tree
        self._check_open("compute a gradient")
        src_leaves, src_def = tree.flatten(sources)
        src_nodes = [self._node_of(s, "source") for s in src_leaves]
        tgt_leaves, _ = tree.flatten(target)
        seeds = []
        if output_gradients is None:
            seed_leaves = [None] * len(tgt_leaves)
        else:
            seed_leaves, _ = tree.flatten(output_gradients)
            if len(seed_leaves) != len(tgt_leaves):
                raise ValueError(f"output_gradients has {len(seed_leaves)} arrays for {len(tgt_leaves)} targets")
        for t, g in zip(tgt_leaves, seed_leaves):
            node = self._node_of(t, "target", missing_ok=True)
            if node is None:
                continue
            self._outputs.setdefault(node, "f" if not self._outputs else f"f{len(self._outputs) + 1}")
            shape, dtype = self.entries[node].out_aval
            if g is None:
                module = backend.array_module(raw(t))
                g = module.ones(shape, dtype=dtype)
            elif aval(g)[0] != shape:
                raise ValueError(f"output_gradients entry has shape {aval(g)[0]}, but its target has shape {shape}")
            seeds.append((node, g))
        self._kernel_log = []
        cts = backward(self.entries, seeds, src_nodes, self._kernel_log, recording=self.active,
                       regions=self.regions, launcher=self.launcher)
        grads = [cts.get(n) if n is not None else None for n in src_nodes]
        grads = [g if g is not None else _zeros(s) for g, s in zip(grads, src_leaves)]
        if not self.persistent:
            for e in self.entries:
                e.saved = None
            self.freed = True
        return tree.unflatten(src_def, grads)

    def _node_of(self, value, role, missing_ok=False):
        v = value
        while type(v) is Tensor:
            if v._trace is self:
                return v._node
            v = v._primal
        if missing_ok or role == "source":
            return None
        raise ValueError(f"the {role} was not computed on this Tape")

    def saved_bytes(self, exclude=()) -> int:
        """Bytes of the arrays this tape keeps for its backward pass, each counted once, leaving out the arrays
        in ``exclude`` (typically the inputs, which the caller holds anyway)."""
        skip = {id(raw(a)) for a in exclude}
        seen, total = set(), 0
        for e in self.entries:
            for v in e.saved or ():
                v = raw(v)
                if hasattr(v, "nbytes") and id(v) not in skip and id(v) not in seen:
                    seen.add(id(v))
                    total += int(v.nbytes)
        return total

    # ---- printing
    def __str__(self):
        return self.format()

    def format(self, adjoint=False) -> str:
        """The tape as a Wengert list; with ``adjoint=True``, the adjoint program the backward pass runs."""
        return format_tape(self.entries, self._outputs, adjoint)

    def adjoint(self) -> str:
        return self.format(adjoint=True)

    def kernel_specs(self):
        """The ``gpuad.fusion.KernelSpec`` of each fused region of the last ``gradient`` call, in the order they
        ran."""
        if self._kernel_log is None:
            raise RuntimeError("no backward pass has run on this Tape yet: call gradient() first")
        return [spec_of(entry) for entry in self._kernel_log]

    def kernels(self, target: str = "cuda") -> str:
        """The generated source of the fused backward kernels of the last ``gradient`` call, one per
        elementwise region, for the layouts of that call's arrays: ``target="cuda"`` as the GPU runs it,
        ``"cpu"`` as its CPU build. (On NumPy arrays the same regions ran as their Python rendering.)"""
        seen, parts = set(), []
        for spec in self.kernel_specs():
            if spec.name not in seen:
                seen.add(spec.name)
                parts.append(kernel_source(spec, target))
        return "\n".join(parts)


def watch_in_active_tapes(t: Tensor) -> Tensor:
    """Watch a new Tensor on every open Tape, outermost first (so each inner tape boxes the outer's value)."""
    for tape in _open_tapes:
        if tape.active:
            tape.watch(t)
    return t


def _zeros(like):
    v = raw(like)
    module = backend.array_module(v)
    shape, dtype = aval(v)
    return module.zeros(shape, dtype=dtype if is_float_dtype(dtype) else module.float64)


def backward(entries, seeds, sources, log=None, recording=False, *, regions, launcher=None):
    """Cotangents of ``sources`` (tape nodes) given ``seeds`` [(node, cotangent)], by one reverse walk.

    Returns {node: cotangent} for the sources reached. Entries that cannot reach a source are skipped, and the
    cotangents of intermediates are dropped as soon as they have been propagated. Elementwise regions
    (``regions``: the tape's ``RegionBuilder``) run as one fused unit each when the walk reaches their last
    entry, through ``launcher`` (None: the default for the arrays); ``log`` collects their kernel specs.
    """
    wanted = {n for n in sources if n is not None}
    if not wanted or not seeds:
        return {}
    n = len(entries)
    first = min(wanted)
    reaches = bytearray(n)
    for s in wanted:
        reaches[s] = 1
    for i in range(first, n):
        if not reaches[i]:
            for p in entries[i].parents:
                if p is not None and reaches[p]:
                    reaches[i] = 1
                    break
    # Raw arrays everywhere: fast in-place path. Otherwise (an outer transform is recording, or the seeds are
    # traced) the rules run on traced values and buffers are never mutated.
    # ``recording``: the tape being differentiated is itself still open (gradient() inside its ``with`` block);
    # its own boxes never reach the backward pass, so it does not make the pass traced.
    fast = state.active_traces == int(recording) and not any(type(g) is Tensor for _, g in seeds)
    cts = [None] * n
    owned = bytearray(n)
    module = None
    for node, g in seeds:
        accumulate(cts, owned, node, g, False, None)  # a seed is the caller's: never added into

    # Fused regions (raw arrays only): group the region entries from the first source on by region (reaching
    # down to the first entry of every region that has one there); each runs at its last entry.
    low, groups = regions.groups(first, n) if fast else (first, None)
    region_nodes = regions.nodes()
    values = None  # traced backward: region values recomputed with traced ops

    for i in range(n - 1, low - 1, -1):
        e = entries[i]
        if groups and i in region_nodes:
            group = groups.get(i)
            if group is not None:
                run_region(entries, group, cts, owned, reaches, wanted, log, launcher)
            continue
        ct = cts[i]
        if ct is None or not reaches[i]:
            continue
        if e.prim is None:
            continue
        if i not in wanted:
            cts[i] = None
        parents = e.parents
        needed = [p is not None and reaches[p] and is_float_dtype(a[1]) for p, a in zip(parents, e.avals)]
        if not any(needed):
            continue
        saved = e.saved
        if i in region_nodes:  # a region entry run by its per-op rule: recompute what the rule reads
            if values is None:
                values = {}
            saved = rule_inputs(entries, i, values)
        contribs = e.prim.vjp(ct, saved, e.params, e.avals, needed, fast)
        for p, c, need in zip(parents, contribs, needed):
            if need and c is not None:
                if fast and module is None:
                    module = backend.array_module(c)
                accumulate(cts, owned, p, c, c is not ct, module if fast else None)
    return {s: cts[s] for s in wanted}


def format_tape(entries, outputs, adjoint=False):
    names = [f"v{i + 1}" for i in range(len(entries))]
    lines = []
    rows = []
    for i, e in enumerate(entries):
        args = [names[p] if p is not None else _const_text(e, k) for k, p in enumerate(e.parents)]
        rhs = e.label if e.prim is None else e.prim.format(args, e.params or {})
        kind = "input" if e.prim is None else e.prim.name
        rows.append((f"{names[i]} = {rhs}", kind, _aval_text(e.out_aval), outputs.get(i)))
    if not adjoint:
        width = max((len(r[0]) for r in rows), default=0) + 5
        kind_width = max((len(r[1]) for r in rows), default=0) + 4
        aval_width = max((len(r[2]) for r in rows), default=0)
        for text, kind, avt, out in rows:
            line = text.ljust(width) + f"({kind})".ljust(kind_width)
            if aval_width:
                line += avt.ljust(aval_width + 2)
            if out:
                line += f"<- output {out}"
            lines.append(line.rstrip())
        return "\n".join(lines)
    def adj(i):  # the adjoint of v_i, written with the bar over the v, as in the textbook: v̄1
        return f"v\u0304{i + 1}"
    for node, name in outputs.items():
        lines.append(f"{adj(node)} = 1{'' if not _aval_text(entries[node].out_aval) else ' (ones)'}"
                     f"    (seed: output {name})")
    for i in range(len(entries) - 1, -1, -1):
        e = entries[i]
        if e.prim is None:
            continue
        args = [names[p] if p is not None else _const_text(e, k) for k, p in enumerate(e.parents)]
        for k, p in enumerate(e.parents):
            if p is None or not is_float_dtype(e.avals[k][1]):
                continue
            term = e.prim.format_adjoint(k, adj(i), args, names[i], e.params or {})
            if getattr(e.prim, "partials", None) and e.avals[k][0] != e.out_aval[0]:
                term = f"sum_to({term}, {e.avals[k][0]})"  # a broadcast operand's cotangent is summed back
            lines.append(f"{adj(p)} += {term}")
    return "\n".join(lines)


def _aval_text(av):
    shape, dtype = av
    if not shape:
        return ""
    return f"{dtype}[{','.join(map(str, shape))}]"


def _const_text(entry, k):
    shape, dtype = entry.avals[k]
    if shape:
        return f"c<{dtype}[{','.join(map(str, shape))}]>"
    if entry.label and k in entry.label:
        return repr(entry.label[k])
    return "c"
