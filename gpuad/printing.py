"""Printing a tape: the Wengert list of the forward pass and the adjoint program of the backward pass.

``format_tape`` renders a tape's entries as the reference text writes them (``v3 = v1 * v2``), and with
``adjoint=True`` the adjoint program (``v\u03041 += v\u03044 * cos(v1)``) from each primitive's own
``format``/``format_adjoint``. It reads entries only; it knows nothing of how the backward pass runs.
"""
from __future__ import annotations

from .core import is_float_dtype


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
            if getattr(e.prim, "wirtinger", None) is not None and e.prim.is_wirtinger(k, e.avals[k][1]):
                term = e.prim.format_wirtinger(k, adj(i), args, names[i])  # a complex argument of abs, imag ...
            else:
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
