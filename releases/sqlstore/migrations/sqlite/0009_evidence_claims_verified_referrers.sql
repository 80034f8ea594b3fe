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

-- A referrer (a manifest with a subject) is verified when every one of its
-- layers carried evidence that verified against a trusted key and was
-- recorded for a tag of its subject. Only verified referrers, and their
-- layers, are reached from the subject's tags: they are served to whoever
-- may pull the subject and are immutable once it is admitted. Any other
-- referrer is content its pusher attached, served to its pusher, admins
-- and auditors, and deletable by its pusher and admins. Referrers stored
-- before this migration start unverified (fail closed); pushing the
-- subject's tag again re-reads them.
ALTER TABLE oci_manifests ADD COLUMN verified BIGINT NOT NULL DEFAULT 0;
