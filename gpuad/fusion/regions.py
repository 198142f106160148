"""Grouping elementwise tape entries into regions while a tape records, and handing the regions to its backward
pass.

A ``RegionBuilder`` belongs to one tape and keeps its own union-find state (by tape node): the tape calls
``join`` for each elementwise entry it records (which merges the entry into the regions of its region-internal
arguments, and says what the entry saves: its arguments, with None in place of the internal ones, so a region's
intermediates are freed during the forward pass) and ``close`` for every other entry (an outside use of a
region's value closes it). An argument is internal when it is the output of an elementwise entry of the same
shape and dtype in a region that is still open. A region only grows while no entry outside it has used its
values, and stops at ``MAX_REGION`` entries, so every outside use comes after its last entry and the reverse walk
can run the whole region when it reaches that entry (``groups``). When the backward pass is traced, region
entries run their per-op rules instead, on values recomputed with traced ops (``rule_inputs``).

What a region keeps is a cost model (``keeps_value``). On the GPU the kernel recomputes every intermediate in
registers, where arithmetic is free next to memory traffic, so a region keeps nothing but its inputs. On NumPy
arrays each recomputed value is a pass over memory of its own, and a transcendental pass (sin, exp, tanh ...)
costs 1.2-1.7x an arithmetic one, while keeping a value the forward pass computed anyway costs memory only: there
an internal argument of at least single precision whose producer's row calls a transcendental function is kept
(the backward pass reads it, ``program.Region.given``) and the arithmetic ones are still recomputed.
"""
from __future__ import annotations

import ast

from .. import backend
from ..core import bind

# A region stops growing at MAX_REGION entries: a kernel's straight-line code keeps the values it recomputes in
# registers.
MAX_REGION = 128

# Functions of the rows' expression language that cost about an arithmetic pass on NumPy (comparisons, selects,
# rounding, sign manipulation): a value computed with these only is recomputed, not kept.
CHEAP_FUNCTIONS = frozenset({"abs", "sign", "floor", "ceil", "trunc", "rint", "square", "maximum", "minimum",
                             "fmax", "fmin", "copysign", "clip", "where"})
_dear: dict = {}  # row -> whether its forward expression calls a function outside CHEAP_FUNCTIONS


def dear_to_recompute(prim) -> bool:
    """Whether row ``prim``'s forward value costs more than an arithmetic pass to recompute on NumPy."""
    dear = _dear.get(prim)
    if dear is None:
        dear = _dear[prim] = any(isinstance(n, ast.Call) and n.func.id not in CHEAP_FUNCTIONS
                                 for n in ast.walk(prim.forward.tree))
    return dear


def keeps_value(prim, value) -> bool:
    """The cost model (module docstring): a region keeps the value of its member with row ``prim`` for the
    backward pass when it is dear to recompute and a host (NumPy) array of at least single precision. (A
    float16/bfloat16 value is recomputed: the host kernels compute in float, more precisely than the rounded
    value the forward pass stored.)"""
    dear = _dear.get(prim)  # (inlined: join asks for every internal argument it records)
    if dear is None:
        dear = dear_to_recompute(prim)
    return dear and backend.is_host_array(value) and value.dtype.itemsize >= 4


class RegionBuilder:
    """The regions of one tape's elementwise entries (see the module docstring).

    Tape-facing API: ``RegionBuilder(entries)`` with the tape's list of entries (``join`` reads the rows of
    earlier entries there); while recording, ``join(node, parents, primals, avals, out_aval)`` for each
    elementwise entry (returns what the entry saves) and ``close(parents)`` for every other entry; in the
    backward pass, ``groups(first, stop)`` (the regions to run, by their last member) and ``node in
    builder.nodes()`` (the entry is a region entry: it saved its arguments, not what its rule reads).
    ``regions()`` lists them all.
    """

    def __init__(self, entries=(), max_size=MAX_REGION):
        self.entries = entries
        self.max_size = max_size
        self._link: dict[int, int] = {}   # region entry -> union-find link towards its region's first entry
        self._size: dict[int, int] = {}   # a region's first entry -> how many entries the region has (default 1)
        self._closed: set[int] = set()    # first entries of regions an entry outside them has used
        self.cache: dict = {}             # kept by a persistent tape's backward passes (``run.run_region``)
        self._groups_key = self._groups = None

    def nodes(self):
        """The region entries (a live set-like view: ``node in builder.nodes()`` without a method call)."""
        return self._link.keys()

    def _root(self, node):
        """The first entry of ``node``'s region (compressing ``node``'s link)."""
        link = self._link
        r = link[node]
        while link[r] != r:
            r = link[r]
        link[node] = r
        return r

    def join(self, node, parents, primals, avals, out_aval):
        """Put elementwise entry ``node`` (with argument nodes ``parents``, None for constants, values
        ``primals`` and their (shape, dtype) ``avals``) in the region of its internal arguments, merging their
        regions, or start a region of its own; returns what the entry saves: its arguments with None in place of
        the internal ones, except the values the cost model keeps (``keeps_value``). A region accepts members
        only while it is open and has fewer than ``max_size`` entries; a refused entry saves every argument and
        starts a region of its own."""
        link, closed = self._link, self._closed
        roots = internal = None
        for k, p in enumerate(parents):
            if p is None or p not in link:
                continue
            r = link[p]
            if link[r] != r:
                r = self._root(p)
            if r in closed or avals[k] != out_aval:
                closed.add(r)  # a use from outside the region
            elif roots is None:
                roots, internal = [r], [k]
            else:
                internal.append(k)
                if r not in roots:
                    roots.append(r)
        if roots is None:
            link[node] = node
            return tuple(primals)
        sizes = self._size
        if len(roots) == 1:
            first = roots[0]
            size = sizes.get(first, 1) + 1
        else:
            first = min(roots)
            size = 1
            for r in roots:
                size += sizes.get(r, 1)
        if size > self.max_size:
            closed.update(roots)
            link[node] = node
            return tuple(primals)
        for r in roots:
            link[r] = first
        sizes[first] = size
        link[node] = first
        saved = list(primals)
        entries = self.entries
        for k in internal:
            if not keeps_value(entries[parents[k]].prim, saved[k]):
                saved[k] = None
        return tuple(saved)

    def close(self, parents):
        """Close the regions whose values a non-elementwise entry uses (its argument nodes ``parents``)."""
        link = self._link
        for p in parents:
            if p is not None and p in link:
                self._closed.add(self._root(p))

    def groups(self, first, stop):
        """The regions the backward pass runs over nodes ``first`` .. ``stop - 1``: (the lowest node the reverse
        walk must reach, {last member: the region's members, ascending}), the regions that have a member from
        ``first`` on, reaching down to their first entry; ({} when there are none). The answer is kept for the
        next call with the same nodes while no entry joins (a persistent tape's next passes): callers only read
        it."""
        link = self._link
        if not link:
            return first, {}
        key = (first, stop, len(link))  # membership only grows, by join, which adds a node
        if self._groups_key == key:
            return self._groups
        self._groups_key, self._groups = key, self._group(first, stop)
        return self._groups

    def _group(self, first, stop):
        link = self._link
        root_of = {}
        for i in range(first, stop):
            if i in link:
                r = link[i]
                root_of[i] = r if link[r] == r else self._root(i)
        if not root_of:
            return first, {}
        groups = {r: [] for r in root_of.values()}
        low = min(first, min(groups))
        for i in range(low, first):
            if i in link:
                r = self._root(i)
                if r in groups:
                    groups[r].append(i)
        for i, r in root_of.items():
            groups[r].append(i)
        return low, {members[-1]: members for members in groups.values()}

    def regions(self):
        """Every region's members (tape nodes, ascending), ordered by their first entry."""
        out = {}
        for i in sorted(self._link):
            out.setdefault(self._root(i), []).append(i)
        return list(out.values())


def arguments(entries, i, values):
    """The argument values of region entry ``i``: saved, or recomputed (memoised in ``values``, by node) by
    binding the entries' primitives, so traced when the backward pass is traced."""
    e = entries[i]
    if not any(v is None for v in e.saved):
        return e.saved
    stack = [p for p, v in zip(e.parents, e.saved) if v is None and p not in values]
    while stack:  # iterative: regions can be long chains
        j = stack[-1]
        if j in values:
            stack.pop()
            continue
        ej = entries[j]
        missing = [p for p, v in zip(ej.parents, ej.saved) if v is None and p not in values]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        values[j] = bind(ej.prim, [values[p] if v is None else v for p, v in zip(ej.parents, ej.saved)], {})
    return [values[p] if v is None else v for p, v in zip(e.parents, e.saved)]


def rule_inputs(entries, i, values):
    """What region entry ``i``'s per-op rule reads (``prim.saves``), with its output recomputed when it is
    read; ``values`` memoises recomputed values across the entries of one backward pass."""
    e = entries[i]
    args = arguments(entries, i, values)
    out = None
    if "out" in e.prim.saves:
        out = values.get(i)
        if out is None:
            out = values[i] = bind(e.prim, list(args), {})
    return e.prim.save(args, out)
