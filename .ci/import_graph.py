#!/usr/bin/env python3
"""The import graph of a Rust crate's modules, from its own paths, failing on a circle.

Usage: .ci/import_graph.py SRC_DIR [--depth N] [--strict MODULE]...   (e.g. shared/src)

Each file is a module (`process/fork.rs` is `process::fork`, `process/mod.rs` is `process`;
`lib.rs`/`main.rs`, the crate root, is left out). An arrow A -> B is any path in A's code
(comments and doc comments ignored) that names B: `crate::b::...`, `super::...` and
`self::...`, `use` groups (`crate::{a, b::c}`) expanded, and an item the crate root re-exports
(`crate::Process`) counted as an arrow to the module it comes from. A path names the deepest
module it reaches. With `--depth N`, modules are cut to their first N path segments (depth 1:
the top-level modules).

Arrows between the files of one top-level module are left out: a `mod.rs` and its files
sharing types both ways is the usual Rust layout, and that module's own business. The
circles this finds are between top-level modules, file to file (so `timeline` may name the
leaf `process::start_method` while `process::fork` names `timeline`). A module named with
`--strict` must have no circle among its own files either. Prints the arrows and, for every strongly connected set of modules,
the arrows inside it; exits 1 if there is one.
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

def module_path(path, src):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return ()
    return tuple(rel)

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)  # string literals
    return "\n".join(line.split("//")[0] for line in text.splitlines())

def expand(prefix, rest):
    """`a::b`, `{a, b::{c, d}}` after `prefix::` -> list of segment lists."""
    rest = rest.strip()
    if not rest.startswith("{"):
        return [prefix + [s for s in rest.split("::") if s]]
    depth, item, items = 0, "", []
    for ch in rest[1:-1]:
        if ch == "," and depth == 0:
            items.append(item); item = ""
            continue
        depth += (ch == "{") - (ch == "}")
        item += ch
    items.append(item)
    out = []
    for item in items:
        item = item.strip().split(" as ")[0].strip()
        if not item:
            continue
        head, sep, tail = item.partition("::{")
        if sep:
            out += expand(prefix + head.split("::"), "{" + tail)
        else:
            out.append(prefix + item.split("::"))
    return out

PATH = re.compile(r"\b(crate|super|self)((?:::(?:" + IDENT + r"|\{[^;]*?\}(?=\s*;)))+)")

def inline_modules(text):
    """The `mod name { ... }` blocks of a file: (start, end, name)."""
    blocks = []
    for match in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", text):
        depth, at = 0, match.end() - 1
        for at in range(match.end() - 1, len(text)):
            depth += (text[at] == "{") - (text[at] == "}")
            if depth == 0:
                break
        blocks.append((match.start(), at, match.group(1)))
    return blocks

def references(text, here, modules):
    """Absolute segment lists for every crate path in `text`, written in module `here`."""
    found = []
    blocks = inline_modules(text)
    def module_at(position):
        inner = [name for start, end, name in blocks if start < position < end]
        return list(here) + inner
    # A path that starts with a child module's name (`use task::x;` in `pool/mod.rs`).
    for match in re.finditer(r"(?<![:\w])(" + IDENT + r")::", text):
        child = tuple(module_at(match.start())) + (match.group(1),)
        if child in modules:
            found.append(list(child))
    for match in PATH.finditer(text):
        anchor, tail = match.group(1), match.group(2)
        if anchor == "crate":
            base = []
        elif anchor == "self":
            base = module_at(match.start())
        else:
            base = module_at(match.start())[:-1]
        tail = tail[2:]
        # `super::super::x`
        while tail.startswith("super::"):
            base = base[:-1]; tail = tail[7:]
        brace = tail.find("{")
        if brace >= 0:
            head = [s for s in tail[:brace].split("::") if s]
            found += expand(base + head, tail[brace:])
        else:
            found.append(base + [s for s in tail.split("::") if s])
    return found

def reexports(src, modules):
    """Names the crate root makes visible (`pub use m::{A, B}`, `use m as alias`) -> module."""
    out = {}
    root = next((os.path.join(src, f) for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))), None)
    if root is None:
        return out
    text = strip_comments(open(root, encoding="utf-8").read())
    for match in re.finditer(r"(?:pub(?:\([a-z]+\))?\s+)?use\s+([^;]+);", text):
        body = match.group(1).strip()
        if body.startswith(("std", "core", "alloc", "crate::__")):
            continue
        body = body.removeprefix("crate::")
        first = body.split("::")[0]
        if first not in {m[0] for m in modules if m}:
            continue
        if " as " in body and "{" not in body:
            path, alias = body.split(" as ")
            out[alias.strip()] = resolve(path.strip().split("::"), modules)
            continue
        for segments in expand([], body if body.startswith("{") else "{" + body + "}"):
            name = segments[-1]
            out.setdefault(name, resolve(segments, modules))
    return out

def resolve(segments, modules):
    for cut in range(len(segments), 0, -1):
        if tuple(segments[:cut]) in modules:
            return tuple(segments[:cut])
    return None

def graph(src, depth, strict=()):
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                m = module_path(path, src)
                if m:
                    files[m] = path
    modules = set(files)
    names = reexports(src, modules)
    cut = (lambda m: m[:depth]) if depth else (lambda m: m)
    arrows = {cut(m): set() for m in modules}
    for m, path in files.items():
        text = strip_comments(open(path, encoding="utf-8").read())
        for segments in references(text, m, modules):
            target = resolve(segments, modules)
            if target is None and segments and segments[0] in names and len(segments) >= 1:
                target = names[segments[0]]
            if target is None:
                continue
            a, b = cut(m), cut(target)
            if a == b:
                continue
            if a[0] == b[0] and a[0] not in strict and not depth:
                continue
            arrows[a].add(b)
    return {m: sorted(t) for m, t in sorted(arrows.items())}

def cycles(g):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in g.get(v, ()):
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

def name(m):
    return "::".join(m)

def main():
    src = sys.argv[1]
    depth = int(sys.argv[sys.argv.index("--depth") + 1]) if "--depth" in sys.argv else 0
    strict = [sys.argv[i + 1] for i, arg in enumerate(sys.argv) if arg == "--strict"]
    g = graph(src, depth, strict)
    total = sum(len(t) for t in g.values())
    print(f"{src}: {len(g)} modules, {total} arrows" + (f" (depth {depth})" if depth else ""))
    for m, targets in g.items():
        print(f"  {name(m)} -> {', '.join(map(name, targets)) or '(nothing)'}")
    found = cycles(g)
    for comp in found:
        print("CIRCLE: " + ", ".join(map(name, comp)))
        for m in comp:
            for t in g[m]:
                if t in comp:
                    print(f"    {name(m)} -> {name(t)}")
    if found:
        sys.exit(1)
    print("no import circle")

if __name__ == "__main__":
    main()
