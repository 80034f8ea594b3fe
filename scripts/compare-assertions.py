#!/usr/bin/env python3
"""Compare the assertion lines of the test code at two trees:

    scripts/compare-assertions.py OLD_TREE NEW_TREE

(for example a `git archive BASE | tar -x` of the base commit and this
checkout).

An assertion line is a line of test code (any *_test.go, and the
conformance suite releases/metadatatest) that calls t.Error*, t.Fatal*,
or names want/got in a condition. Lines are normalised for what a move
between packages renames and nothing else: package qualifiers of the
domain's packages, the hop through a concept service or store
(svc.Catalog.Push, db.Catalog().GetArtifact), and leading whitespace.
The result is the multiset difference, both ways."""
import os, re, sys, collections
PKGS = r'(?:releases|catalog|access|audit|blobs|trust|lifecycle|registry|dmlregistry|errdef|names|provenance)'
HOPS = r'\.(?:Access|Audit|Blobs|Maintenance|Trust|Catalog|Releases|Registry|Provenance)(?:\(\))?(?=\.[A-Z])'
ASSERT = re.compile(r'\b[tT]\.(?:Error|Errorf|Fatal|Fatalf)\(|\bwant\b|\bif got\b|\bgot\b.*\bwant\b')
def norm(line):
    s = line.strip()
    # Renames of the move: the suite's store bundle, the blob service's
    # store accessor, the suite helper renamed beside the package access.
    s = s.replace('m store', 'm Metadata').replace('.Blobs.Store().', '.Blobs().').replace('accessRec(', 'access(').replace('e.T.', 'e.t.')
    s = re.sub(r'\b' + PKGS + r'\.(?=[A-Z])', '', s)
    s = re.sub(HOPS, '', s)
    s = s.replace('*DML', '*Service').replace('.DML', '.Service')
    return s
def collect(root):
    out = collections.Counter()
    where = {}
    for d, _, files in os.walk(root):
        if '/.git' in d or '/testdata' in d:
            continue
        for f in files:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)
            if not f.endswith('.go'):
                continue
            if not (f.endswith('_test.go') or rel.startswith(('releases/metadatatest/', 'releases/internal/domaintest/', 'internal/testserver/', 'internal/testkeys/'))):
                continue
            for i, line in enumerate(open(p, encoding='utf-8')):
                if ASSERT.search(line):
                    n = norm(line)
                    out[n] += 1
                    where.setdefault(n, []).append(f'{rel}:{i+1}')
    return out, where
base, bw = collect(sys.argv[1])
new, nw = collect(sys.argv[2])
gone = base - new
added = new - base
print(f'assertion lines: base {sum(base.values())}, now {sum(new.values())}')
print(f'in base, not now ({sum(gone.values())}):')
for l, c in sorted(gone.items()):
    print(f'  {c}x  {l}\n       base: {", ".join(bw[l][:3])}')
print(f'now, not in base ({sum(added.values())}):')
for l, c in sorted(added.items(), key=lambda x: nw[x[0]][0]):
    print(f'  {c}x  {l}\n       now: {", ".join(nw[l][:3])}')
