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
CLIENT_RENAMES = {  # old Client method: new resource method
    'Artifact(': 'Artifacts().Get(', 'ListArtifacts(': 'Artifacts().List(', 'AllArtifacts(': 'Artifacts().All(',
    'RetireArtifact(': 'Artifacts().Retire(', 'Provenance(': 'Artifacts().Provenance(',
    'Push(': 'Artifacts().Push(', 'Pull(': 'Artifacts().Pull(', 'PullRange(': 'Artifacts().PullRange(',
    'AuditKey(': 'Audit().Key(', 'AuditCheckpoint(': 'Audit().Checkpoint(', 'AuditEntries(': 'Audit().Entries(',
    'InclusionProof(': 'Audit().InclusionProof(', 'ConsistencyProof(': 'Audit().ConsistencyProof(',
    'AccessLog(': 'Audit().AccessLog(', 'AllAccessRecords(': 'Audit().AllAccessRecords(',
    'AddSignature(': 'Evidence().AddSignature(', 'AddAttestation(': 'Evidence().AddAttestation(',
    'ListEvidence(': 'Evidence().List(', 'FetchEvidence(': 'Evidence().Fetch(',
    'Fsck(': 'Admin().Fsck(', 'GC(': 'Admin().GC(',
    'CreateRelease(': 'Releases().Create(', 'Release(': 'Releases().Get(', 'ListReleases(': 'Releases().List(',
    'AllReleases(': 'Releases().All(', 'SetPlan(': 'Releases().SetPlan(', 'SetArtifacts(': 'Releases().SetArtifacts(',
    'Decide(': 'Releases().Decide(', 'RecordDeployment(': 'Releases().RecordDeployment(',
    'UpdateDeployment(': 'Releases().UpdateDeployment(', 'FileReview(': 'Releases().FileReview(',
    'CancelRelease(': 'Releases().Cancel(', 'ReleaseManifest(': 'Releases().Manifest(',
    'GateDefaults(': 'Settings().GateDefaults(', 'SetGateDefaults(': 'Settings().SetGateDefaults(',
    'ListTokens(': 'Tokens().List(', 'CreateToken(': 'Tokens().Create(', 'RevokeToken(': 'Tokens().Revoke(',
    'AddTrustKey(': 'Trust().AddKey(', 'TrustKeys(': 'Trust().Keys(', 'RevokeTrustKey(': 'Trust().RevokeKey(',
    'SetTrustPolicy(': 'Trust().SetPolicy(', 'TrustPolicy(': 'Trust().Policy(', 'ServerKey(': 'Trust().ServerKey(',
    'ServerPublicKey(': 'Trust().ServerKey(',
}
CLIENT_RENAMES = {k[:-1]: v[:-1] for k, v in CLIENT_RENAMES.items()}

def norm(line):
    s = line.strip()
    # The Go client's split by resource (issue 10 item 4): its types moved
    # to api/wire, and each method to a resource, some under a shorter
    # name; the old name is the new one.
    s = re.sub(r'\b(?:client|wire)\.(?=[A-Z])', '', s)
    for old, new in CLIENT_RENAMES.items():
        s = s.replace('.' + new + '(', '.' + old + '(')
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
