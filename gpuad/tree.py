"""Nested containers of arrays ("pytrees"): tuples, lists and dicts of leaves, flattened and rebuilt.

Transforms accept and return such structures; a leaf is anything that is not a tuple (named tuples included),
list or dict (dict keys are visited in sorted order, as JAX does).
"""
from __future__ import annotations


def flatten(value):
    """(leaves, treedef): the leaves in order, and a description that ``unflatten`` rebuilds from."""
    leaves = []

    def walk(v):
        if isinstance(v, (tuple, list)):
            return (type(v), tuple(walk(x) for x in v))
        if isinstance(v, dict):
            keys = sorted(v)
            return (dict, tuple(keys), tuple(walk(v[k]) for k in keys))
        leaves.append(v)
        return None

    treedef = walk(value)
    walk = None  # break the cycle of the recursive closure (it would keep the leaves alive until gc runs)
    return leaves, treedef


def unflatten(treedef, leaves):
    it = iter(leaves)

    def build(d):
        if d is None:
            return next(it)
        if d[0] is dict:
            return {k: build(c) for k, c in zip(d[1], d[2])}
        if hasattr(d[0], "_fields"):  # a named tuple: built from positional fields
            return d[0](*(build(c) for c in d[1]))
        return d[0](build(c) for c in d[1])

    result = build(treedef)
    build = it = None  # break the cycle of the recursive closure (it would keep the leaves alive until gc runs)
    return result


def describe(treedef) -> str:
    """A short text of a structure, for error messages."""
    if treedef is None:
        return "*"
    if treedef[0] is dict:
        return "{" + ", ".join(f"{k!r}: {describe(c)}" for k, c in zip(treedef[1], treedef[2])) + "}"
    inner = ", ".join(describe(c) for c in treedef[1])
    if hasattr(treedef[0], "_fields"):
        return f"{treedef[0].__name__}({inner})"
    return f"[{inner}]" if treedef[0] is list else f"({inner}{',' if len(treedef[1]) == 1 else ''})"
