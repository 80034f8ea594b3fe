-- What a keyless verification proved about the signer of a piece of
-- evidence (signing.KeylessSigner as JSON: the trusted root, the OIDC
-- issuer and subject of the Fulcio certificate, the identity's pinned
-- claims, the Rekor log index and integrated time). NULL for evidence
-- verified with a trusted key. Receipts and provenance documents name the
-- identity from it.
ALTER TABLE evidence ADD COLUMN keyless TEXT;
