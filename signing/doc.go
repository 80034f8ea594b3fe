// Package signing decides whether evidence about an artifact can be
// trusted, and signs what the server itself vouches for.
//
// It knows nothing of HTTP, storage or releases. It works on an artifact's
// SHA-256 digest, which the server already holds, and never re-reads the
// artifact (except for Ed25519, see VerifyBlobSignature).
//
// Verification, as in cosign, is two checks: the signature over the
// payload with a trusted key (LoadPublicKey), then that the payload names
// the digest held. VerifyEvidence accepts what `cosign sign-blob --key` and
// `cosign attest-blob --key` produce: a bare base64 signature, a Sigstore
// bundle (v0.1-v0.3) with public-key verification material, and a DSSE
// envelope of an in-toto Statement (v0.1 or v1), alone or in a bundle.
// Keyless (certificate) bundles are refused there as Unsupported: they are
// verified by KeylessVerifier instead (IsKeyless tells them apart), against
// the Sigstore trusted roots and workload identities (Identity) an admin
// installed, offline. Failures are *VerificationError with a Reason.
//
// A container-image signature that `cosign sign --key` pushed to a
// registry is in two parts: the simple-signing payload (a layer blob that
// names the image manifest's digest) and a signature annotation on that
// layer. CosignOCISignatureEvidence joins them into one JSON document,
//
//	{"mediaType":"application/vnd.dml.cosign.oci-signature.v1+json",
//	 "payload":"<base64 payload bytes>","signature":"<base64 signature>"}
//
// so it is stored like any other evidence and verified later from its bytes
// alone: the signature over the payload, then that the payload's
// docker-manifest-digest is the manifest's digest. The DSSE and bundle
// layers of `cosign attest` need no wrapping.
//
// Policy and Evaluate turn verified evidence into a decision: admitted,
// quarantined or rejected. Evaluation is pure, so a decision can be
// recomputed when keys are revoked or the policy changes.
//
// ServerSigner is the server's own ECDSA key: it signs admission receipts
// (VerifyReceipt checks them with the public key alone), DSSE envelopes
// and blobs. LoadCosignPrivateKey, SignBlobCosign and AttestBlob let the
// CLI produce the same evidence cosign would.
package signing
