"""The package's layers: no import cycle among gpuad's modules (imports inside functions count), and the core
knows nothing above it. A package ``__init__`` that only re-exports is transparent: importing it counts as
importing what it re-exports, so a cycle through a re-exporting face is still found."""
import ast
from pathlib import Path

import gpuad

ROOT = Path(gpuad.__file__).parent


def _modules():
    mods = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        mods[".".join(parts)] = (path, is_pkg)
    return mods


def _imports(name, path, is_pkg, known):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = name if is_pkg else name.rpartition(".")[0]
    deps = set()
    for node in ast.walk(tree):  # every import, at module level or inside a function
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                mod = ".".join(parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                deps.add(t)
    face = is_pkg and not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                              for n in tree.body)
    return deps, face


def _graph():
    mods = _modules()
    known = set(mods)
    graph, faces = {}, set()
    for name, (path, is_pkg) in mods.items():
        graph[name], face = _imports(name, path, is_pkg, known)
        if face:
            faces.add(name)

    def through_faces(deps, seen=()):
        out = set()
        for d in deps:
            if d in faces and d not in seen:
                out |= through_faces(graph[d], (*seen, d))
            elif d not in faces:
                out.add(d)
        return out

    return {m: through_faces(ds) - {m} for m, ds in graph.items() if m not in faces}


def _cycles(graph):
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_the_modules():
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "\n".join(
        f"cycle: " + "; ".join(f"{m} -> {sorted(d for d in graph[m] if d in c)}" for m in c) for c in cycles)


def test_the_core_imports_nothing_of_gpuad():
    graph = _graph()
    assert graph["gpuad.core"] == set()
    assert graph["gpuad.backend"] == set()


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
