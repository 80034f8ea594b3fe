-- Where each claim of evidence was first presented. A claim is what a
-- verified signature asserts whatever its encoding (the key's material and
-- the message it signed: an artifact digest, a DSSE envelope's PAE, a
-- cosign simple-signing payload). Evidence counts for the artifact its
-- claims were first presented for; the domain refuses the same claims for
-- another artifact unless the same principal, or an admin, presents them.
-- Rows are written once, with the evidence, and never change: they
-- outlive the artifact (a deleted quarantined tag) so that its evidence
-- cannot be replayed elsewhere once it is gone.
CREATE TABLE evidence_claims (
    claim            TEXT   NOT NULL PRIMARY KEY,
    artifact_name    TEXT   NOT NULL,
    artifact_version TEXT   NOT NULL,
    presented_by     TEXT   NOT NULL,
    presented_at     BIGINT NOT NULL
);
