#!/usr/bin/env python3
"""The daemon's layering, checked on the objects the build made.

Two rules (docs/HACKING.md, "Layers"):
- the core (the objects of src/libberthcore.a) calls nothing of the event
  layer and nothing of libevent;
- no circle of calls among src/ files: if a.c calls into b.c, nothing
  that b.c calls, directly or not, calls back into a.c.

Calls are read with nm: what each object defines against what it needs.
Run by make check from the top of the build tree.
"""
import glob
import os
import re
import subprocess
import sys


def source_of(obj):
    """src/berthd-api-page.o -> api-page.c (automake's per-target prefix)."""
    base = os.path.basename(obj)[:-2]
    return base.split("-", 1)[-1] + ".c" if "-" in base else base + ".c"


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True,
                         check=True).stdout
    defined, needed = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            needed.add(parts[1])
    return defined, needed


def circles(edges):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    objs = sorted(glob.glob("src/*.o"))
    core = {source_of(o) for o in objs
            if os.path.basename(o).startswith("libberthcore_a-")}
    if not objs or not core:
        print("layers: no objects under src/ (run make first)")
        return 99
    defs, needs = {}, {}
    for o in objs:
        d, n = symbols(o)
        src = source_of(o)
        defs.setdefault(src, set()).update(d)
        needs.setdefault(src, set()).update(n)
    owner = {s: f for f, ds in defs.items() for s in ds}
    edges = {f: sorted({owner[s] for s in needs[f]
                        if s in owner and owner[s] != f}) for f in defs}
    failed = 0
    libevent = re.compile(r"^(event_|evhttp_|evbuffer_|bufferevent_|"
                          r"evconnlistener_|evutil_|evtimer_)")
    for f in sorted(core):
        up = [g for g in edges[f] if g not in core]
        ev = sorted(s for s in needs[f] if libevent.match(s))
        if up or ev:
            print("layers: core file %s calls the event layer: %s" %
                  (f, " ".join(up + ev)))
            failed += 1
    for comp in circles(edges):
        print("layers: circle of calls among: %s" % " ".join(comp))
        for f in comp:
            print("    %s -> %s" % (f, " ".join(g for g in edges[f]
                                             if g in comp)))
        failed += 1
    print("layers: %d files, %d in the core, %d problems" %
          (len(edges), len(core), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
