"""What a fused region computes, independent of arrays: its structure (``Region``), its composed adjoint program
(``Program``) and a kernel of it for one combination of operand layouts (``KernelSpec``).

A ``Region`` is the structure of a connected group of elementwise tape entries over one broadcast shape: its
``Elementwise`` rows with argument references, which nodes receive a cotangent from outside, and which
cotangents it must produce. ``program(region)`` composes the rows symbolically into straight-line code: the
forward values the partials need, recomputed from the region's inputs, then the adjoints in reverse order, with
dead code pruned. A node whose forward value the tape kept (``Region.given``: on the CPU, the values that are
dearer to recompute than to keep) is read from its input instead, and what only it was computed from is not
recomputed. Both renderings (``render_cpp``, ``render_python``) print that one program. Everything here is a pure
function of hashable structure, cached in the process; kernel names hash the rows' names, so they are the same in
every process.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Region:
    """What a fused backward computes, independent of array sizes and layouts.

    ``nodes``: (row, argument refs) in tape order, the row an ``Elementwise`` primitive; a ref is ("i", j)
    external input j, ("c", j) Python scalar j, or ("v", k) the value of node k. ``inputs``: (dtype name, has the
    region's full shape) per external input. ``seeded``: nodes whose cotangent arrives from outside.
    ``outputs``: ("i", j) the cotangent of input j, or ("v", k) the total adjoint of node k (a node that is
    itself a differentiation source). ``given``: (k, j) pairs, node k's forward value is external input j (kept
    by the tape, ``regions.RegionBuilder``), so the program reads it rather than recomputing it; its adjoint
    still flows through node k. ``unit_seeds``: indices into ``seeded`` of cotangents known to be 1 everywhere
    (the ``sum`` of a gradient's seed): the Python rendering folds them away.
    """

    dtype: str
    scalar: bool  # the broadcast shape is (): NumPy computes with scalars, so no in-place updates
    inputs: tuple
    n_consts: int
    nodes: tuple
    seeded: tuple
    outputs: tuple
    given: tuple = ()
    unit_seeds: tuple = ()

    def __hash__(self):  # computed once per object (a region is a dict key of several caches per backward pass)
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.dtype, self.scalar, self.inputs, self.n_consts, self.nodes, self.seeded, self.outputs,
                      self.given, self.unit_seeds))
            object.__setattr__(self, "_hash", h)
        return h


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
        name = self.__dict__.get("_name")
        if name is None:
            name = _kernel_name(self)
            object.__setattr__(self, "_name", name)
        return name

    def __hash__(self):
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.region, self.layouts, self.ndim))
            object.__setattr__(self, "_hash", h)
        return h


_interned: dict = {}


def intern(value):
    """The one canonical object equal to ``value`` (a Region or KernelSpec): the backward pass builds them anew
    for every region it runs, and the caches keyed by them then find their entry by identity, without comparing
    structures. Bounded: cleared when it holds 8192 of them."""
    found = _interned.get(value)
    if found is None:
        if len(_interned) >= 8192:
            _interned.clear()
        found = _interned[value] = value
    return found


_regions: dict = {}


def region_of(*fields) -> Region:
    """``intern(Region(*fields))``, found by the fields themselves without making a Region (the backward pass asks
    for one per region it runs). Bounded like ``intern``."""
    found = _regions.get(fields)
    if found is None:
        if len(_regions) >= 8192:
            _regions.clear()
        found = _regions[fields] = intern(Region(*fields))
    return found


def _nonzero(partial) -> bool:
    return partial is not None and partial.constant != 0


COMPLEX_DTYPES = ("complex64", "complex128")


def is_complex_ref(region: Region, ref) -> bool:
    """The value a reference names is complex: an input of a complex dtype, or a node of a complex region (a
    Python scalar constant never is)."""
    kind, j = ref
    if kind == "i":
        return region.inputs[j][0] in COMPLEX_DTYPES
    return kind == "v" and region.dtype in COMPLEX_DTYPES


class Program:
    """The composed adjoint program of a region: ``values`` (nodes whose forward value is recomputed, in order),
    ``live_seeds`` (incoming cotangents that matter), ``steps`` ((target ref, source node, argument position):
    adjoint of the source times its partial, added into the target, in execution order), ``written`` (outputs
    produced) and ``used_inputs`` (external inputs read). ``resolve`` maps a reference to a given node's value to
    its input. ``pairs`` holds the steps whose argument is complex
    and whose row is not holomorphic (abs, sign, real, imag, conj): {(k, q): (A, B)}, the Wirtinger pair whose
    term is ``a * A + conj(a * B)`` (``ops.elementwise``'s convention); every other step's term is ``a * partial``
    (a holomorphic row's real partial, evaluated on complex values, is its A)."""

    def __init__(self, region: Region):
        self.region = region
        nodes = region.nodes
        self.given = given = {k: ("i", j) for k, j in region.given}
        self.prims = [prim for prim, _ in nodes]
        n = len(nodes)
        self.pairs = {}
        for k, (prim, refs) in enumerate(nodes):
            if prim.wirtinger is not None:
                for q, r in enumerate(refs):
                    if prim.wirtinger[q] is not None and is_complex_ref(region, r):
                        self.pairs[(k, q)] = prim.wirtinger[q]
        out_inputs = {j for kind, j in region.outputs if kind == "i"}
        out_nodes = {k for kind, k in region.outputs if kind == "v"}
        # useful[k]: node k's adjoint reaches a requested output
        useful = [False] * n
        for k, (prim, refs) in enumerate(nodes):
            if k in out_nodes:
                useful[k] = True
                continue
            useful[k] = any(self.live(k, q) and ((r[0] == "i" and r[1] in out_inputs) or
                                                 (r[0] == "v" and useful[r[1]]))
                            for q, r in enumerate(refs))
        seeded = set(region.seeded)
        has_adjoint = [k in seeded for k in range(n)]
        steps = []  # (target ref, source node, argument position), in execution order
        for k in range(n - 1, -1, -1):
            if not (has_adjoint[k] and useful[k]):
                continue
            for q, r in enumerate(nodes[k][1]):
                if not self.live(k, q):
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
            for name in self.reads(k, q):
                if name == "out":
                    needed.add(k)
                else:
                    r = refs["xyz".index(name)]
                    if r[0] == "v":
                        needed.add(r[1])
        for k in range(n - 1, -1, -1):
            if k in needed and k not in given:
                needed.update(r[1] for r in nodes[k][1] if r[0] == "v")
        self.values = sorted(needed - given.keys())
        used = {given[k][1] for k in needed if k in given}
        for k in self.values:
            used.update(r[1] for r in nodes[k][1] if r[0] == "i")
        for _, k, q in steps:
            refs = nodes[k][1]
            used.update(refs["xyz".index(name)][1] for name in self.reads(k, q)
                        if name != "out" and refs["xyz".index(name)][0] == "i")
        self.used_inputs = tuple(sorted(used))

    def resolve(self, ref):
        """``ref`` as the program reads it: a given node's value is its external input."""
        if ref[0] == "v" and ref[1] in self.given:
            return self.given[ref[1]]
        return ref

    def factors(self, k, q):
        """The expressions of step (k, q)'s term: (A, B) for a Wirtinger pair, else (the partial,)."""
        pair = self.pairs.get((k, q)) if self.pairs else None
        return pair if pair is not None else (self.prims[k].partials[q],)

    def live(self, k, q) -> bool:
        """Argument q of node k receives a nonzero term."""
        return any(_nonzero(e) for e in self.factors(k, q))

    def reads(self, k, q):
        """The row names (x, y, z, out) step (k, q)'s term reads, in order of first use."""
        names = []
        for e in self.factors(k, q):
            if _nonzero(e):
                names += [n for n in e.names if n not in names]
        return names

    def rename(self, k, ref_text):
        """The names of node k's row expressions (x, y, z, out) as rendered references."""
        refs = self.region.nodes[k][1]
        mapping = {"xyz"[q]: ref_text(self.resolve(r)) for q, r in enumerate(refs)}
        mapping["out"] = ref_text(self.resolve(("v", k)))
        return mapping

    def statements(self):
        """The program as statements in execution order, each (kind, what, reads): ("value", k) computes node
        k's forward value, ("seed", i) starts the adjoint of the node seed i arrives at, ("step", (target, k, q))
        adds a step's term into its target. ``reads`` are the program locals the statement reads: ("v", k) a
        forward value, ("a", k) the adjoint of node k, ("g", j) the cotangent of input j."""
        nodes = self.region.nodes
        out = []
        for k in self.values:
            refs = nodes[k][1]
            names = self.prims[k].forward.names
            out.append(("value", k, tuple(("v", r[1]) for q, r in enumerate(refs)
                                          if r[0] == "v" and "xyz"[q] in names and r[1] not in self.given)))
        for i in self.live_seeds:
            out.append(("seed", i, ()))
        declared = {("v", self.region.seeded[i]) for i in self.live_seeds}
        for step in self.steps:
            target, k, q = step
            refs = nodes[k][1]
            reads = [("a", k)]
            for name in self.reads(k, q):
                r = self.resolve(("v", k) if name == "out" else refs["xyz".index(name)])
                if r[0] == "v":
                    reads.append(("v", r[1]))
            if target in declared:  # an accumulation reads what it adds into
                reads.append(local(target))
            declared.add(target)
            out.append(("step", step, tuple(reads)))
        return out

    def last_reads(self):
        """{program local: index in ``statements()`` of the last statement that reads it}."""
        last = {}
        for n, (_, _, reads) in enumerate(self.statements()):
            for name in reads:
                last[name] = n
        return last


def local(target):
    """The program local a step's target accumulates into: ("g", j) for input j, ("a", k) for node k."""
    return ("g" if target[0] == "i" else "a", target[1])


@lru_cache(maxsize=4096)
def program(region: Region) -> Program:
    return Program(region)


def operands(region: Region):
    """(role, index) of each kernel operand in order: used inputs, live seeds, written outputs."""
    prog = program(region)
    return ([("in", j) for j in prog.used_inputs] + [("seed", i) for i in prog.live_seeds]
            + [("out", o) for o in prog.written])


def describe(region: Region) -> str:
    """A short readable name of the region: the op alone, or ``fused<n>_<first ops>``."""
    ops = []
    for prim, _ in region.nodes:
        if prim.name not in ops:
            ops.append(prim.name)
    if len(region.nodes) == 1:
        return ops[0]
    shown = "_".join(ops[:4]) + ("_etc" if len(ops) > 4 else "")
    return f"fused{len(region.nodes)}_{shown}"


def _structure_text(region: Region) -> str:
    """The region as text with its rows by name (never by object identity): what kernel names hash."""
    nodes = tuple((prim.name, refs) for prim, refs in region.nodes)
    return (f"Region(dtype={region.dtype!r}, scalar={region.scalar!r}, inputs={region.inputs!r}, "
            f"n_consts={region.n_consts!r}, nodes={nodes!r}, seeded={region.seeded!r}, "
            f"outputs={region.outputs!r}"
            + (f", given={region.given!r}" if region.given else "")
            + (f", unit_seeds={region.unit_seeds!r}" if region.unit_seeds else "") + ")")


_SUFFIX = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16", "complex64": "c64",
           "complex128": "c128"}


@lru_cache(maxsize=4096)
def _kernel_name(spec: KernelSpec) -> str:
    key = f"({_structure_text(spec.region)}, {spec.layouts!r}, {spec.ndim!r})"
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return f"gpuad_{describe(spec.region)}_bwd_{_SUFFIX.get(spec.region.dtype, 'f64')}_{digest}"
