#!/usr/bin/env python3
"""Prints a module's public API, one declaration per line, sorted, from the symbol graph
that swift-symbolgraph-extract writes (public and open only). `make check-api` diffs it
against docs/api/<module>.txt, so the surface grows only by an explicit commit of that file.

usage: public_surface.py MODULE.symbols.json
"""
import json
import sys

graph = json.load(open(sys.argv[1]))
lines = set()
for sym in graph["symbols"]:
    if sym.get("accessLevel") not in ("public", "open"):
        continue
    path = ".".join(sym["pathComponents"])
    # the declaration text tells overloads apart (argument labels and types)
    decl = "".join(f["spelling"] for f in sym.get("declarationFragments", []))
    decl = " ".join(decl.split())
    lines.add(f"{sym['kind']['identifier'].removeprefix('swift.')}\t{path}\t{decl}")
print("\n".join(sorted(lines)))
