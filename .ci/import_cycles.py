#!/usr/bin/env python3
"""Fails when two source files of a crate import each other, directly or through others.

A file's imports are the modules its `use crate::…`, `use super::…` and `crate::…::` paths
name, resolved to files under the crate's `src/`. A module declaration (`mod x;`) is not an
import: a parent that declares its children may use them, but a child that uses its parent's
own items closes a circle. Items re-exported by `lib.rs` count as imports of `lib.rs`.
"""
import pathlib
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
# `use child::…` / `pub use child::…`: a path relative to the current module.
RELATIVE = re.compile(r"\buse\s+(\w+)((?:::\w+)*)")


def module_file(src, parts):
    """The file that defines module `parts` (a list of names from the crate root), if any."""
    base = src.joinpath(*parts) if parts else src
    for candidate in (base.with_suffix(".rs"), base / "mod.rs"):
        if candidate.is_file():
            return candidate
    return src / "lib.rs" if not parts else None


def module_of(src, file):
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


INLINE = re.compile(r"\bmod\s+(\w+)\s*\{")


def imports(src, file):
    text = re.sub(r"//[^\n]*", "", file.read_text())
    found = set()
    # An inline module (`mod tests { … }`, by convention last in its file) is one level
    # deeper: its `super` is the file itself.
    inline = INLINE.search(text)
    parts = [(module_of(src, file), text)]
    if inline:
        parts = [
            (module_of(src, file), text[: inline.start()]),
            (module_of(src, file) + [inline.group(1)], text[inline.end() :]),
        ]
    for here, text in parts:
        found |= imports_in(src, file, here, text)
    return found


def imports_in(src, file, here, text):
    found = set()
    for root, rest in PATH.findall(text):
        names = rest.split("::")[1:]
        parts = [] if root == "crate" else here[:-1]
        while names and names[0] == "super":
            parts, names = parts[:-1], names[1:]
        # The longest prefix of the path that is a module file; `use a::b::{c, d}` is `a::b`.
        target = None
        for k in range(len(names), -1, -1):
            target = module_file(src, parts + names[:k])
            if target is not None:
                break
        if target is not None and target != file:
            found.add(target)
    for first, rest in RELATIVE.findall(text):
        if first in ("crate", "super", "self", "std", "core", "alloc"):
            continue
        names = [first] + rest.split("::")[1:]
        for k in range(len(names), 0, -1):
            target = module_file(src, here + names[:k])
            if target is not None:
                if target != file:
                    found.add(target)
                break
    return found


def cycles(src):
    files = sorted(src.rglob("*.rs"))
    graph = {f: imports(src, f) for f in files}
    for start in files:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    yield [p.relative_to(src) for p in path + [start]]
                    stack.clear()
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))


def main():
    bad = False
    for src in sys.argv[1:]:
        for cycle in cycles(pathlib.Path(src)):
            print(f"{src}: import circle: {' -> '.join(map(str, cycle))}")
            bad = True
    if bad:
        sys.exit(1)
    print(f"no import circles in {len(sys.argv) - 1} crates")


if __name__ == "__main__":
    main()
