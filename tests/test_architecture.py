"""The package's own imports flow one way (docs/architecture.md): no cycles, nothing
reaching up into a higher layer. Reads the source (every import, also inside functions);
imports nothing."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lstmtool")
# Lower numbers sit lower: a module may import its own layer and those below it.
LAYERS = {"errors": 0, "version": 0, "core": 1, "containers": 2, "cells": 2, "remote": 2, "layouts": 3, "reading": 4,
          "surgery": 5, "upgrader": 5, "exchange": 5, "pictures": 5, "fleet": 6, "convert": 6, "health": 6, "cli": 7, "__init__": 8,
          "__main__": 8}


def modules():
    out = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".")
                out[rel] = os.path.join(dirpath, f)
    return out


def imports(rel, path, known):
    """The lstmtool modules `rel` imports (relative or absolute, at any depth of the file)."""
    package = rel.rsplit(".", 1)[0] if "." in rel else ""
    if rel.endswith("__init__"):
        package = rel[: -len(".__init__")] if "." in rel else ""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("lstmtool"):
                target = node.module[len("lstmtool."):] if node.module != "lstmtool" else ""
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}".lstrip(".")
                if sub in known:
                    found.add(sub)
                elif target in known:
                    found.add(target)
                elif f"{target}.__init__".lstrip(".") in known or target == "":
                    found.add(f"{target}.__init__".lstrip(".") if target else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lstmtool."):
                    found.add(alias.name[len("lstmtool."):])
    found.discard(rel)
    return found


def layer_of(rel):
    return LAYERS[rel.split(".")[0]]


def graph():
    known = modules()
    return {rel: imports(rel, path, known) for rel, path in known.items()}


def test_every_package_has_a_layer():
    assert {rel.split(".")[0] for rel in modules()} <= set(LAYERS)


def test_no_module_imports_upwards():
    wrong = [(rel, dep) for rel, deps in graph().items() for dep in deps if layer_of(dep) > layer_of(rel)]
    assert not wrong, wrong


def test_no_import_cycles():
    g = graph()
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == "open":
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(g):
        if n not in state:
            visit(n)
    # a package's __init__ re-exporting its own modules is not a cycle of jobs
    cycles = [c for c in cycles if not all(x.split(".")[0] == c[0].split(".")[0] and
                                           (x.endswith("__init__") or c.count(x) == 1) for x in c)
              or len({x.split(".")[0] for x in c}) > 1]
    assert not cycles, cycles


def test_containers_never_import_the_reader():
    g = graph()
    assert not [r for r, deps in g.items() if r.startswith("containers.") and any(d.startswith("reading") for d in deps)]


def test_no_benchmark_script_shadows_an_importable_module():
    """tests/test_remote.py puts benchmarks/ on sys.path: a benchmarks/onnx.py once hid the onnx
    package from every later test."""
    import importlib.machinery
    import sys

    bench = os.path.abspath(os.path.join(os.path.dirname(ROOT), "benchmarks"))
    names = [f[:-3] for f in os.listdir(bench) if f.endswith(".py")]
    elsewhere = [p for p in sys.path if os.path.abspath(p or ".") != bench]  # as if benchmarks/ were not there
    clashes = [n for n in names if n in sys.builtin_module_names
               or importlib.machinery.PathFinder.find_spec(n, elsewhere) is not None]
    assert not clashes, clashes
