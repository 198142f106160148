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

from . import backend, printing, tree
from .core import (BOX_TYPES, Tensor, Trace, aval, bind, constant, is_float_dtype, is_real_float_dtype, lower,
                   no_grad_active, raw, recording_traces, settle)
from .core import lifters as core_lifters
from .fusion.regions import RegionBuilder, rule_inputs
from .fusion.render_cpp import kernel_source
from .fusion.run import accumulate, run_region, spec_of
from .ops.elementwise import Elementwise

# Record elementwise regions (set GPUAD_FUSION=0, or call set_fusion(False), for one entry per op saving what
# its rule reads, as without fusion).
_fusion = os.environ.get("GPUAD_FUSION", "1").strip() not in ("0", "off", "false", "no")
_SCALAR_AVAL = aval(0.0)  # a Python scalar's: shape (), dtype None


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


class TapeTensor(Tensor):
    """A value recorded on a Tape: its primal and the index of its entry (its node) on that tape."""

    __slots__ = ("_node",)

    def __init__(self, trace, primal, node):
        self._trace = trace
        self._primal = primal
        self._node = node


class Tape(Trace):
    """Records operations on watched values for reverse mode.

    ``with gpuad.Tape() as tape: y = f(tape.watch(x))`` then ``tape.gradient(y, x)``. Inside its block a tape
    watches, by identity, every ``gpuad.tensor`` at its first use and every value passed to ``watch``; the
    watched objects themselves are left untouched. Recording happens only in the thread that opened the block.
    A non-persistent tape frees its saved arrays after the first ``gradient`` call; ``persistent=True`` keeps
    them for more calls. ``launcher`` runs the fused regions' kernels (``gpuad.fusion.HostLauncher()``: the CPU
    build of the kernels on NumPy arrays); by default CuPy arrays use the CUDA launcher and NumPy arrays the
    Python rendering.
    """

    def __init__(self, persistent=False, launcher=None):
        super().__init__()
        self.persistent = persistent
        self.entries: list[TapeEntry] = []
        self.freed = False  # a non-persistent tape drops its saved arrays after its first gradient()
        self._outputs: dict[int, str] = {}
        self._inputs = 0
        self._kernel_log = None
        self._watched: dict[int, tuple] = {}  # id(value) -> (value, its TapeTensor): values watched by identity
        self.launcher = launcher
        self.regions = RegionBuilder(self.entries)  # the elementwise regions of the entries (gpuad.fusion.regions)

    # ---- context manager
    def __enter__(self):
        self.start(lifts=True)
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- recording
    def watch(self, value):
        """Watch ``value`` on this tape: its uses inside this tape's block are recorded, and ``gradient`` accepts
        it as a source. A gpuad Tensor is returned as it is (it is watched by identity, not changed); anything
        else (an array, a number) is wrapped in a new ``gpuad.tensor`` that is watched and returned."""
        self._check_open("watch")
        if not self.active:
            raise RuntimeError("Tape.watch records only inside the tape's block, in the thread that opened it: "
                               "call it inside `with tape:`")
        if isinstance(value, (list, tuple, dict)) or value is None or isinstance(value, (str, bytes)):
            raise TypeError(f"Tape.watch takes one array or gpuad Tensor, got {type(value).__name__}; watch "
                            f"each array separately (e.g. [tape.watch(v) for v in values])")
        if not isinstance(value, Tensor):
            value = tensor(value)  # watched by the open blocks, this one included
        if value._trace is self or id(value) in self._watched:
            return value
        inner = value._trace
        if inner is not None and inner.active and inner.level > self.level:
            raise ValueError("cannot watch a value of a Tape opened inside this one from the outer Tape; "
                             "watch it on the outer Tape first")
        self._lift_through_block(value)
        return value

    def _lift_through_block(self, value):
        """Lift ``value`` through the open blocks around this one (outermost first), then watch it here."""
        lifted = value
        for t in core_lifters():
            if t is self:
                break
            lifted = t.lift(value, lifted)
        self._watch_as(value, lifted)
        return value

    def _watch_as(self, original, value):
        primal = settle(value)
        box = TapeTensor(self, primal, self._add_input(primal))
        self._watched[id(original)] = (original, box)
        return box

    def lift(self, original, value):
        found = self._watched.get(id(original))
        if found is not None:
            return found[1]
        if original._trace is None and not no_grad_active():
            return self._watch_as(original, value)  # a gpuad.tensor leaf: watched at its first use
        return value

    def box_input(self, value):
        """A new TapeTensor for ``value`` as an input of this tape (``value`` itself is left untouched)."""
        return TapeTensor(self, value, self._add_input(value))

    def _add_input(self, primal, label=None):
        self._inputs += 1
        self.entries.append(TapeEntry(None, (), (), None, (), aval(primal), label or f"x{self._inputs}"))
        return len(self.entries) - 1

    def process(self, prim, args, params):
        if self._stack.no_grad:  # (the stack of this thread: process runs only while this trace is live)
            return bind(prim, [lower(a, self) for a in args], params)
        entries = self.entries
        primals, parents, avals = [], [], []
        constants = None  # Python-scalar arguments, kept only to print the tape
        boxed = False     # an argument is a box of an outer trace: the primitive is bound again, one level down
        for a in args:
            if type(a) is TapeTensor and a._trace is self:
                p = a._primal
                primals.append(p)
                parents.append(a._node)
                avals.append(entries[a._node].out_aval)  # (its value's aval, recorded with it)
            else:
                p = a
                primals.append(a)
                parents.append(None)
                if type(a) is float or type(a) is int:
                    constants = constants or {}
                    constants[len(avals)] = a
                    avals.append(_SCALAR_AVAL)
                else:
                    avals.append(aval(a))
            if not boxed and type(p) in BOX_TYPES:
                boxed = True
        hook = prim.forward_and_save  # gpuad.custom / gpuad.recompute: output and saved values in one call
        if hook is None:
            out = bind(prim, primals, params) if boxed else prim.impl(*primals, **params)
        else:
            out, saved = hook(primals, params)
        try:
            out_aval = (out.shape, out.dtype)  # aval(out) without the call (a Tensor's properties agree with it)
        except AttributeError:
            out_aval = aval(out)
        dtype = out_aval[1]
        kind = None if dtype is None else dtype.kind
        if kind != "f" and kind != "c" and not is_real_float_dtype(dtype):
            return out  # integer and boolean results carry no derivative
        for k in prim.nondiff:
            parents[k] = None
        if _fusion and isinstance(prim, Elementwise):
            if kind == "c":
                primals = _complex_scalars_as_arrays(primals, out, dtype)
                avals = [aval(p) for p in primals]
            saved = self.regions.join(len(entries), parents, primals, avals, out_aval)
        else:
            self.regions.close(parents)
            if hook is None:
                saved = prim.save(primals, out)
        entries.append(TapeEntry(prim, parents, saved, params, avals, out_aval, constants))
        return TapeTensor(self, out, len(entries) - 1)

    def _check_open(self, what):
        if self.freed:
            raise RuntimeError(
                f"cannot {what}: this non-persistent Tape already ran gradient() and freed its saved arrays; "
                f"use gpuad.Tape(persistent=True) to call gradient() more than once")

    # ---- the backward pass
    def gradient(self, target, sources, output_gradients=None):
        """d target / d sources, by one reverse pass. ``sources`` may be one value or a (nested) list/tuple/dict
        of them; the result has the same structure. A source the target does not depend on gets zeros.
        ``output_gradients`` seeds the pass (default: ones, i.e. the gradient of sum(target); of Re(sum(target))
        for a complex target, JAX's convention: see README "Dtypes")."""
        src_leaves, src_def = tree.flatten(sources)
        tgt_leaves, _ = tree.flatten(target)
        if output_gradients is None:
            seed_leaves = [None] * len(tgt_leaves)
        else:
            seed_leaves, _ = tree.flatten(output_gradients)
            if len(seed_leaves) != len(tgt_leaves):
                raise ValueError(f"output_gradients has {len(seed_leaves)} arrays for {len(tgt_leaves)} targets")
        return tree.unflatten(src_def, self.pull(tgt_leaves, seed_leaves, src_leaves))

    def pull(self, targets, cotangents, sources):
        """The one reverse-mode entry point (``gradient``, ``grad``, ``value_and_grad`` and ``vjp`` all end
        here): the cotangents of ``sources`` given ``cotangents`` of ``targets`` (flat lists; a None cotangent
        means ones). A source the targets do not depend on gets zeros of its shape."""
        self._check_open("compute a gradient")
        src_nodes = [self._node_of(s) for s in sources]
        for k, (s, node) in enumerate(zip(sources, src_nodes)):
            if node is None:
                raise ValueError(
                    f"source {k} ({_describe(s)}) was never watched by this Tape, so the tape cannot tell how the "
                    f"target depends on it: call tape.watch(x) inside the tape's block before computing with x "
                    f"(or make it with gpuad.tensor and use it inside the block), and pass that same x here")
        seeds = []
        for t, g in zip(targets, cotangents):
            node = self._node_of(t)
            if node is None:
                continue
            self._outputs.setdefault(node, "f" if not self._outputs else f"f{len(self._outputs) + 1}")
            shape, dtype = self.entries[node].out_aval
            if g is None:
                g = backend.array_module(raw(t)).ones(shape, dtype=dtype)
            else:
                gshape, gdtype = aval(g)
                if gshape != shape:
                    raise ValueError(f"a cotangent (output gradient) has shape {gshape}, but its target has "
                                     f"shape {shape}; it must have its target's shape")
                if gdtype is not None and gdtype.kind == "c" and dtype.kind != "c":
                    raise TypeError(f"a cotangent (output gradient) is complex ({gdtype}), but its target is real "
                                    f"({dtype}): its imaginary part would be dropped; pass a real cotangent")
                g = as_array(g)
            seeds.append((node, g))
        self._kernel_log = []
        self.freed = not self.persistent  # (the raw backward pass frees the saved arrays as it goes)
        cts = backward(self.entries, seeds, src_nodes, self, self._kernel_log)
        grads = [cts.get(n) if n is not None else None for n in src_nodes]
        grads = [g if g is not None else backend.float_zeros_like(raw(s), aval(s)[0]) for g, s in zip(grads, sources)]
        grads = _independent(grads, [g for _, g in seeds])
        if not self.persistent:
            for e in self.entries:
                e.saved = None
            self.freed = True
        return grads

    def _node_of(self, value):
        """The node of ``value`` on this tape (None when the tape never saw it)."""
        v = value
        while isinstance(v, Tensor):
            if v._trace is self:
                return v._node
            found = self._watched.get(id(v))
            if found is not None:
                return found[1]._node
            v = v._primal
        return None

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
        return printing.format_tape(self.entries, self._outputs, adjoint)

    def adjoint(self) -> str:
        return self.format(adjoint=True)

    def kernel_specs(self):
        """The ``gpuad.fusion.KernelSpec`` of each fused region of the last ``gradient`` call, in the order they
        ran."""
        if self._kernel_log is None:
            raise RuntimeError("no backward pass has run on this Tape yet: call gradient() first")
        return [spec for spec in map(spec_of, self._kernel_log) if spec is not None]

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


def tensor(value, dtype=None):
    """A leaf Tensor holding ``value`` (converted to a backend array): an explicit request for derivatives. Every
    open Tape block of this thread watches it, now if it is made inside one, else at its first use there."""
    value = constant(value)  # (under vmap a batched value stays batched)
    if isinstance(value, Tensor):
        if dtype is not None:
            value = value.astype(dtype)
    else:
        module = backend.array_module(value)
        if not isinstance(value, module.ndarray) or dtype is not None:
            value = module.asarray(value, dtype=dtype)
    leaf = Tensor(None, value)
    lifted = leaf
    for t in core_lifters():
        lifted = t.lift(leaf, lifted)
    return leaf


def _independent(grads, seeds):
    """The gradients as arrays the caller may write into: a broadcast view (stride 0, as a constant partial
    after a ``sum`` gives), the caller's own cotangent, or an array already handed out for another source is
    copied; every other result is a buffer of its own, returned as it is."""
    out = []
    for g in grads:
        strides = getattr(g, "strides", None)
        if strides is not None and type(g) not in BOX_TYPES and (
                (0 in strides and g.size > 1) or any(g is s or g.base is s for s in seeds)
                or any(g is h for h in out)):
            g = g.copy()
        out.append(g)
    return out


def _complex_scalars_as_arrays(primals, out, dtype):
    """A region entry's Python complex arguments as 0-d arrays of its output's dtype (the dtype a weak scalar
    takes part in): a region's inputs are arrays or real Python scalars."""
    if not any(type(p) is complex for p in primals):
        return primals
    module = backend.array_module(raw(out))
    return [module.asarray(p, dtype=dtype) if type(p) is complex else p for p in primals]


def _describe(value):
    shape, dtype = aval(value)
    kind = "a gpuad Tensor" if isinstance(value, Tensor) else f"a {type(value).__name__}"
    return f"{kind} of shape {shape}" + (f" and dtype {dtype}" if dtype is not None else "")


def as_array(value):
    """``value`` as a backend array (a Tensor stays as it is)."""
    if isinstance(value, Tensor):
        return value
    module = backend.array_module(value)
    return value if isinstance(value, module.ndarray) else module.asarray(value)


def backward(entries, seeds, sources, tape, log=None):
    """Cotangents of ``sources`` (tape nodes) given ``seeds`` [(node, cotangent)], by one reverse walk of
    ``tape``'s ``entries``. Returns {node: cotangent} for the sources reached.

    Entries that cannot reach a source are skipped, and the cotangents of intermediates are dropped as soon as
    they have been propagated. With raw arrays everywhere the raw path runs: in-place accumulation, fused
    regions. When another trace records in this thread (or the seeds are traced), the traced path runs the
    per-op rules through ``bind``, so the backward pass is itself differentiated by that trace. The
    differentiated tape itself may still be recording (gradient() inside its block): its own boxes never reach
    the backward pass.
    """
    wanted = {n for n in sources if n is not None}
    if not wanted or not seeds:
        return {}
    first = min(wanted)
    reaches = _reaching(entries, wanted, first)
    if all(t is tape for t in recording_traces()) and not any(isinstance(g, Tensor) for _, g in seeds):
        return _backward_raw(entries, seeds, wanted, reaches, first, tape.regions, tape.launcher, log,
                             not tape.persistent)
    others = [t for t in recording_traces() if t is not tape]
    # Under one vmap (vmap(grad(f)), or jacrev's vmap of a vjp function): regions run fused over the batch.
    batched = others[0].run_region if len(others) == 1 and hasattr(others[0], "run_region") else None
    return _backward_traced(entries, seeds, wanted, reaches, first, tape.regions, batched)


def _reaching(entries, wanted, first):
    """reaches[i]: entry i depends on a wanted source (so its cotangent must be propagated)."""
    reaches = bytearray(len(entries))
    for s in wanted:
        reaches[s] = 1
    for i in range(first, len(entries)):
        if not reaches[i]:
            for p in entries[i].parents:
                if p is not None and reaches[p]:
                    reaches[i] = 1
                    break
    return reaches


def _needed(e, reaches):
    return [p is not None and reaches[p] and is_float_dtype(a[1]) for p, a in zip(e.parents, e.avals)]


def _backward_raw(entries, seeds, wanted, reaches, first, regions, launcher, log, free=False):
    """The raw-array path: each elementwise region runs as one fused program when the walk reaches its last
    entry; every other entry runs its rule on arrays; cotangents are accumulated in place into private
    buffers. ``free`` (a non-persistent tape): each entry drops its saved values once its rule has run, so the
    memory the forward pass kept shrinks as the backward pass goes (what checkpoint's recomputation relies on).
    Otherwise (a persistent tape) each region's structure and kernel plan are kept for the next passes
    (``regions.cache``)."""
    n = len(entries)
    cts = [None] * n
    owned = bytearray(n)
    module = None
    for node, g in seeds:
        accumulate(cts, owned, node, g, False, None)  # a seed is the caller's: never added into
    # Group the region entries from the first source on by region (reaching down to the first entry of every
    # region that has one there); each runs at its last entry. A region whose kernel is not compiled yet has the
    # launcher compile the kernels of the regions still to run with it (one compile per pass: ``run_region``).
    low, groups = regions.groups(first, n)
    region_nodes = regions.nodes()
    cache = key = None
    if not free and groups:
        cache, key = regions.cache, tuple(sorted(wanted))
    for i in range(n - 1, low - 1, -1):
        if groups and i in region_nodes:
            group = groups.get(i)
            if group is not None:
                run_region(entries, group, cts, owned, reaches, wanted, log, launcher, groups, cache, key)
                if free:
                    for m in group:
                        entries[m].saved = None
            continue
        ct = cts[i]
        e = entries[i]
        if ct is None or not reaches[i] or e.prim is None:
            continue
        if i not in wanted:
            cts[i] = None
        needed = _needed(e, reaches)
        if not any(needed):
            continue
        if e.prim.transpose_into is not None:
            _accumulate_transposed(cts, owned, e, ct)
            continue
        contribs = e.prim.vjp(ct, e.saved, e.params, e.avals, needed, True)
        if free:
            e.saved = None
        for k, (p, c, need) in enumerate(zip(e.parents, contribs, needed)):
            if need and c is not None:
                if module is None:
                    module = backend.array_module(c)
                # a contribution is the parent's own buffer unless it is the incoming cotangent or another
                # argument's contribution too (a custom rule may return one array twice)
                fresh = c is not ct and not any(d is c for j, d in enumerate(contribs) if j != k)
                accumulate(cts, owned, p, c, fresh, module)
    return {s: cts[s] for s in wanted}


def _accumulate_transposed(cts, owned, e, ct):
    """Entry ``e``'s transpose added in place into its argument's cotangent buffer (made private first: zeros
    when there is none yet, a copy when it is shared)."""
    node = e.parents[0]
    buf = cts[node]
    if buf is None:
        shape, dtype = e.avals[0]
        buf = backend.array_module(raw(ct)).zeros(shape, dtype=dtype)
    elif not owned[node]:
        buf = buf.copy()
    cts[node] = buf
    owned[node] = 1
    e.prim.transpose_into(buf, ct, e.params)


def _backward_traced(entries, seeds, wanted, reaches, first, regions, batched=None):
    """The traced path: every entry runs its per-op rule through ``bind`` (region entries on their values
    recomputed with traced ops), and cotangents are summed out of place, so the outer traces record it all.
    ``batched``: under a vmap only (``vmap(grad(f))``), the batch trace's ``run_region``, which runs each
    elementwise region as one fused program over the whole batch (True), or declines (False: op by op)."""
    n = len(entries)
    cts = [None] * n
    owned = bytearray(n)  # stays all zero: traced buffers are never added into in place
    for node, g in seeds:
        accumulate(cts, owned, node, g, False, None)
    region_nodes = regions.nodes()
    values = {}  # region values recomputed with traced ops
    low, groups, fused = first, {}, set()
    if batched is not None:
        low, groups = regions.groups(first, n)
    for i in range(n - 1, low - 1, -1):
        if groups and i in region_nodes:
            group = groups.get(i)
            if group is not None and batched(entries, group, cts, reaches, wanted):
                fused.update(group)
            if i in fused:
                continue
        ct = cts[i]
        e = entries[i]
        if ct is None or not reaches[i] or e.prim is None:
            continue
        if i not in wanted:
            cts[i] = None
        needed = _needed(e, reaches)
        if not any(needed):
            continue
        saved = rule_inputs(entries, i, values) if i in region_nodes else e.saved
        contribs = e.prim.vjp(ct, saved, e.params, e.avals, needed, False)
        for p, c, need in zip(e.parents, contribs, needed):
            if need and c is not None:
                accumulate(cts, owned, p, c, False, None)
    return {s: cts[s] for s in wanted}
