#!/usr/bin/env python3
"""The module graph of a crate, from the `crate::` paths of its sources (outside tests).

Usage: .ci/module-graph.py crates/embargo-app/src [--quiet]

Nodes are the crate's top-level modules (a folder module counts as one); an edge is any
`crate::x` path or `use crate::{x, ...}` in a module's files, with the crate root's
re-exports resolved (`App` is `context`, `AppError` is `error`). Prints each module's
dependencies and exits 1 when the graph has a cycle, naming the modules on it.
"""
import os, re, sys
ROOT = {'App': 'context', 'Clock': 'context', 'SystemClock': 'context', 'AppError': 'error'}
args = [a for a in sys.argv[1:] if not a.startswith('--')]
root = args[0] if args else 'crates/embargo-app/src'
quiet = '--quiet' in sys.argv
def module_of(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ('mod', 'lib'): rel = rel[:-1]
    return rel[0] if rel else ''
edges = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith('.rs'): continue
        p = os.path.join(dirpath, f)
        m = module_of(p)
        if not m: continue
        text = open(p).read()
        text = re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*', '', text, flags=re.S)
        text = '\n'.join(l for l in text.split('\n') if not l.lstrip().startswith('//'))
        deps = set(re.findall(r'crate::(\w+)', text))
        for block in re.findall(r'use crate::\{([^;]*)\};', text, flags=re.S) + re.findall(r'use crate::(\w+);', text):
            deps |= set(re.findall(r'\w+', block))
        deps = {ROOT.get(d, d) for d in deps}
        for block in re.findall(r'use crate::\{([^;]*)\};', text, flags=re.S):
            deps |= set(re.findall(r'(?:^|[{,\s])(\w+)(?=::|\s*[,}]|$)', block))
        edges.setdefault(m, set()).update(d for d in deps if d != m and os.path.exists(os.path.join(root, d + '.rs')) or os.path.isdir(os.path.join(root, d)))
        edges[m].discard(m)
# Tarjan
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in sorted(edges.get(v, ())):
        if w not in index: visit(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        sccs.append(c)
for v in sorted(edges): 
    if v not in index: visit(v)
cycles = [c for c in sccs if len(c) > 1]
if not quiet:
    for m in sorted(edges): print(f'{m} -> {", ".join(sorted(edges[m]))}')
if cycles:
    for c in cycles: print('CYCLE:', ' <-> '.join(sorted(c)))
    sys.exit(1)
print(f'{root}: no cycles among {len(edges)} modules')
