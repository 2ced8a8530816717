#!/usr/bin/env python3
"""Builds the import graph of a crate's top-level modules from its `crate::` paths (in `use`
lines and in code), prints every arrow that closes a circle, and fails if there is one.

Usage: import_graph.py SRC_DIR   (e.g. shared/src, bench/src)
A file's module is its first path component under SRC_DIR (`process/fork.rs` -> `process`,
`lib.rs` and `main.rs` -> the crate root, left out). Comments and doc comments are ignored.
"""
import os
import re
import sys

def module_of(path, src):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    name = first[:-3] if first.endswith(".rs") else first
    return None if name in ("lib", "main") else name

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())

def imports(text):
    found = set()
    # `crate::a::...` and `use crate::{a, b::c}` groups.
    for match in re.finditer(r"crate::(\{[^}]*\}|\w+)", text):
        part = match.group(1)
        if part.startswith("{"):
            found.update(re.findall(r"(?:^|[{,])\s*(\w+)", part))
        else:
            found.add(part)
    return found

def graph(src):
    modules = set()
    arrows = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            module = module_of(path, src)
            if module is None:
                continue
            modules.add(module)
            with open(path, encoding="utf-8") as f:
                arrows.setdefault(module, set()).update(imports(strip_comments(f.read())))
    return {m: sorted(t for t in arrows.get(m, ()) if t in modules and t != m) for m in sorted(modules)}

def cycles(g):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in g:
        if v not in index:
            visit(v)
    return out

def main():
    src = sys.argv[1]
    g = graph(src)
    arrows = sum(len(t) for t in g.values())
    print(f"{src}: {len(g)} modules, {arrows} arrows")
    for m, targets in g.items():
        print(f"  {m} -> {', '.join(targets) if targets else '(nothing)'}")
    found = cycles(g)
    for comp in found:
        print(f"CIRCLE: {' <-> '.join(comp)}")
        for m in comp:
            for t in g[m]:
                if t in comp:
                    print(f"    {m} -> {t}")
    if found:
        sys.exit(1)
    print("no import circle")

if __name__ == "__main__":
    main()
