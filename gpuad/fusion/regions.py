"""Grouping elementwise tape entries into regions while a tape records, and handing the regions to its backward
pass.

A ``RegionBuilder`` belongs to one tape and keeps its own state by tape node (each entry's region, each region's
members): the tape calls ``join`` for each elementwise entry it records (which merges the entry into the regions
of its region-internal arguments, and says what the entry saves: its arguments, with None in place of the
internal ones, so a region's intermediates are freed during the forward pass) and ``close`` for every other entry
(an outside use of a region's value closes it). An argument is internal when it is the output of an elementwise
entry of the same shape and dtype in a region that is still open. A region only grows while no entry outside it
has used its values, and stops at ``MAX_REGION`` entries, so every outside use comes after its last entry and the
reverse walk can run the whole region when it reaches that entry (``groups``). When the backward pass is traced,
region entries run their per-op rules instead, on values recomputed with traced ops (``rule_inputs``).

What a region keeps is a cost model (``keeps_value``). On the GPU the kernel recomputes every intermediate in
registers, where arithmetic is free next to memory traffic, so a region keeps nothing but its inputs. On NumPy
arrays each recomputed value is a pass over memory of its own, and a transcendental pass (sin, exp, tanh ...)
costs 1.2-1.7x an arithmetic one, while keeping a value the forward pass computed anyway costs memory only: there
an internal argument of at least single precision whose producer's row calls a transcendental function is kept
(the backward pass reads it, ``program.Region.given``) and the arithmetic ones are still recomputed. Below
``KEEP_MIN_SIZE`` elements nothing is kept: there a NumPy call costs its fixed overhead whatever the function,
less than what a kept value costs the recording and the backward pass's bookkeeping.
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
# Values of fewer elements are recomputed (measured on W8's float32 sin/exp/tanh: keeping loses up to 1000
# elements, wins from 3000).
KEEP_MIN_SIZE = 1024


def dear_to_recompute(prim) -> bool:
    """Whether row ``prim``'s forward value costs more than an arithmetic pass to recompute on NumPy."""
    dear = _dear.get(prim)
    if dear is None:
        dear = _dear[prim] = any(isinstance(n, ast.Call) and n.func.id not in CHEAP_FUNCTIONS
                                 for n in ast.walk(prim.forward.tree))
    return dear


def keeps_value(prim, value) -> bool:
    """The cost model (module docstring): a region keeps the value of its member with row ``prim`` for the
    backward pass when it is dear to recompute and a host (NumPy) array of at least single precision and
    ``KEEP_MIN_SIZE`` elements. (A float16/bfloat16 value is recomputed: the host kernels compute in float, more
    precisely than the rounded value the forward pass stored.)"""
    if value.size < KEEP_MIN_SIZE:  # (first: the cheapest question, and the answer on small arrays)
        return False
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
        # Each region is named by its first entry (its root). Every entry knows its root directly and every root
        # its members, ascending (a merge relabels the members of the regions it absorbs): one lookup per
        # argument while recording, and the backward pass reads the regions without scanning the tape.
        self._root: dict[int, int] = {}            # region entry -> its region's first entry
        self._members: dict[int, list[int]] = {}   # a region's first entry -> its members, ascending
        self._closed: set[int] = set()             # first entries of regions an entry outside them has used
        self.cache: dict = {}                      # kept by a persistent tape's backward passes (``run.run_region``)
        self._groups_key = self._groups = None

    def nodes(self):
        """The region entries (a live set-like view: ``node in builder.nodes()`` without a method call)."""
        return self._root.keys()

    def join(self, node, parents, primals, avals, out_aval):
        """Put elementwise entry ``node`` (with argument nodes ``parents``, None for constants, values
        ``primals`` and their (shape, dtype) ``avals``) in the region of its internal arguments, merging their
        regions, or start a region of its own; returns what the entry saves: its arguments with None in place of
        the internal ones, except the values the cost model keeps (``keeps_value``). A region accepts members
        only while it is open and has fewer than ``max_size`` entries; a refused entry saves every argument and
        starts a region of its own."""
        root_of, closed = self._root, self._closed
        first = saved = others = None
        for k, p in enumerate(parents):
            r = root_of.get(p)  # (None for a constant, or an entry outside every region)
            if r is None:
                continue
            if r in closed or avals[k] != out_aval:
                closed.add(r)  # a use from outside the region
                continue
            if first is None:
                first, saved = r, list(primals)
            elif r != first:
                others = others or set()
                others.add(r)
            if not keeps_value(self.entries[p].prim, primals[k]):
                saved[k] = None
        if first is not None:
            members = self._members
            if others is None:
                group = members[first]
                if len(group) < self.max_size:
                    group.append(node)
                    root_of[node] = first
                    return tuple(saved)
                closed.add(first)
            else:
                roots = sorted({first, *others})
                if sum(len(members[r]) for r in roots) < self.max_size:
                    first = roots[0]
                    group = members[first]
                    for r in roots[1:]:
                        absorbed = members.pop(r)
                        for m in absorbed:
                            root_of[m] = first
                        group.extend(absorbed)
                    group.sort()
                    group.append(node)
                    root_of[node] = first
                    return tuple(saved)
                closed.update(roots)
        root_of[node] = node
        self._members[node] = [node]
        return tuple(primals)

    def close(self, parents):
        """Close the regions whose values a non-elementwise entry uses (its argument nodes ``parents``)."""
        root_of = self._root
        for p in parents:
            r = root_of.get(p)
            if r is not None:
                self._closed.add(r)

    def groups(self, first, stop):
        """The regions the backward pass runs over nodes ``first`` .. ``stop - 1``: (the lowest node the reverse
        walk must reach, {last member: the region's members, ascending}), the regions that have a member from
        ``first`` on, reaching down to their first entry; ({} when there are none). The answer is kept for the
        next call with the same nodes while no entry joins (a persistent tape's next passes): callers only read
        it."""
        if not self._root:
            return first, {}
        key = (first, stop, len(self._root))  # membership only grows, by join, which adds a node
        if self._groups_key == key:
            return self._groups
        low, groups = first, {}
        for r, members in sorted(self._members.items()):
            if r >= stop:
                break
            if members[-1] < first:
                continue
            if members[-1] >= stop:
                members = [m for m in members if m < stop]
                if members[-1] < first:
                    continue
            groups[members[-1]] = list(members)
            low = min(low, r)
        self._groups_key, self._groups = key, (low, groups)
        return self._groups

    def regions(self):
        """Every region's members (tape nodes, ascending), ordered by their first entry."""
        return [list(members) for _, members in sorted(self._members.items())]


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
