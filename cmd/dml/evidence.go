package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/dmlproject/dml/api/client"
	"github.com/dmlproject/dml/api/wire"
	"github.com/spf13/cobra"
)

func newEvidenceCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence",
		Short: "Attach and list signatures and attestations",
	}
	cmd.AddCommand(newEvidenceAddCmd(app), newEvidenceListCmd(app))
	return cmd
}

// Evidence kinds as the server names them.
const (
	kindSignature   = "signature"
	kindAttestation = "attestation"
)

func newEvidenceAddCmd(app *cli) *cobra.Command {
	var (
		kind string
	)
	cmd := &cobra.Command{
		Use:   "add NAME VERSION FILE [--kind signature|attestation]",
		Short: "Attach a signature or attestation made by cosign (or dml sign/attest)",
		Long: `Post FILE as evidence about version VERSION of artifact NAME (FILE - reads stdin).

Accepted: what ` + "`cosign sign-blob --key`" + ` writes (the base64 signature, or with --bundle a
Sigstore bundle), and what ` + "`cosign attest-blob --key`" + ` writes (a DSSE envelope, or a bundle
holding one). The server verifies it against the artifact's digest with its trusted
keys, stores it, and decides admission again; the decision is printed.

--kind auto (the default) posts JSON with a payloadType (a DSSE envelope) or a
dsseEnvelope (a bundle holding one) as an attestation and anything else as a signature.`,
		Example: `  dml evidence add payments/api 1.4.2 api.tar.gz.sig
  dml evidence add payments/api 1.4.2 test-result.dsse.json`,
		Args: cobra.ExactArgs(3),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if kind != "auto" && kind != kindSignature && kind != kindAttestation {
				return fmt.Errorf("--kind must be auto, signature or attestation, not %q", kind)
			}
			body, err := readBounded(cmd.InOrStdin(), args[2], client.MaxEvidenceSize, "evidence")
			if err != nil {
				return err
			}
			if kind == "auto" {
				kind = detectEvidenceKind(body)
			}
			add := c.Evidence().AddSignature
			if kind == kindAttestation {
				add = c.Evidence().AddAttestation
			}
			e, a, err := add(cmd.Context(), args[0], args[1], body)
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), struct {
				Evidence wire.Evidence `json:"evidence"`
				Artifact wire.Artifact `json:"artifact"`
			}{e, a}, func(w io.Writer) error {
				fmt.Fprintf(w, "%s:%s: %s accepted\n", a.Name, a.Version, e.Kind)
				if err := printFields(w, append([][2]string{{"evidence", evidenceSummary(e)}}, admissionFields(a)...)); err != nil {
					return err
				}
				printUnmet(w, a)
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&kind, "kind", "auto", "auto, signature or attestation")
	return cmd
}

// detectEvidenceKind tells an attestation (a DSSE envelope, or a Sigstore
// bundle holding one) from a signature (anything else: a base64
// signature, a bundle holding a message signature).
func detectEvidenceKind(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return kindSignature
	}
	var probe struct {
		PayloadType  *string         `json:"payloadType"`
		DSSEEnvelope json.RawMessage `json:"dsseEnvelope"`
	}
	if json.Unmarshal(trimmed, &probe) != nil {
		// Not JSON after all: let the server say what is wrong with it.
		return kindSignature
	}
	if probe.PayloadType != nil || (len(probe.DSSEEnvelope) > 0 && string(probe.DSSEEnvelope) != "null") {
		return kindAttestation
	}
	return kindSignature
}

func newEvidenceListCmd(app *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list NAME VERSION",
		Short: "List the evidence attached to an artifact version",
		Args:  cobra.ExactArgs(2),
		RunE: app.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			list, err := c.Evidence().List(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return app.emit(cmd.OutOrStdout(), struct {
				Evidence []wire.Evidence `json:"evidence"`
			}{list}, func(w io.Writer) error {
				if len(list) == 0 {
					return printList(w, 0, "no evidence for "+args[0]+":"+args[1], nil)
				}
				return printEvidenceTable(w, list)
			})
		}),
	}
	return cmd
}

func printEvidenceTable(w io.Writer, list []wire.Evidence) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "DIGEST\tKIND\tFORMAT\tSIGNER\tPREDICATE TYPE\tRESULT\tADDED BY\tADDED")
	var keyless []wire.Evidence
	for _, e := range list {
		signer := e.KeyID
		if e.Keyless != nil {
			signer += " (keyless)"
			keyless = append(keyless, e)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", short(e.Digest), e.Kind, e.Format, signer,
			orDash(e.PredicateType), orDash(e.Result), e.CreatedBy, formatTime(e.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// What the certificate and the log proved of each keyless signer.
	for _, e := range keyless {
		if _, err := fmt.Fprintf(w, "%s signed by identity %s: %s\n", short(e.Digest), e.KeyID, keylessSummary(e.Keyless)); err != nil {
			return err
		}
	}
	return nil
}

// keylessSummary says what was proven of a keyless signer.
func keylessSummary(k *wire.KeylessSigner) string {
	s := fmt.Sprintf("subject %s, issuer %s, root %s", k.Subject, k.Issuer, k.Root)
	for _, name := range slices.Sorted(maps.Keys(k.Claims)) {
		s += fmt.Sprintf(", %s=%s", name, k.Claims[name])
	}
	s += fmt.Sprintf(", Rekor entry %d", k.LogIndex)
	if !k.IntegratedTime.IsZero() {
		s += " logged " + formatTime(k.IntegratedTime)
	}
	return s
}

// evidenceSummary is one line about a piece of evidence.
func evidenceSummary(e wire.Evidence) string {
	s := fmt.Sprintf("%s %s, key %s", short(e.Digest), e.Format, e.KeyID)
	if e.Keyless != nil {
		s = fmt.Sprintf("%s %s, identity %s (%s)", short(e.Digest), e.Format, e.KeyID, keylessSummary(e.Keyless))
	}
	if e.PredicateType != "" {
		s += ", " + e.PredicateType
	}
	if e.Result != "" {
		s += " " + e.Result
	}
	return s
}

// admissionFields describe where the artifact stands: the state in
// capitals, the rule, and why it was decided so. Callers print them with
// their own fields, then printUnmet.
func admissionFields(a wire.Artifact) [][2]string {
	fields := [][2]string{{"admission", strings.ToUpper(a.State)}}
	adm := a.Admission
	if adm == nil {
		return fields
	}
	if adm.Rule != "" {
		fields = append(fields, [2]string{"rule", adm.Rule})
	}
	if adm.PolicyVersion != 0 {
		fields = append(fields, [2]string{"policy version", fmt.Sprint(adm.PolicyVersion)})
	}
	// A quarantined artifact's reason only restates its unmet list.
	if adm.Reason != "" && (a.State != "quarantined" || len(adm.Unmet) == 0) {
		fields = append(fields, [2]string{"reason", adm.Reason})
	}
	if adm.DecidedAt != nil && a.State != "quarantined" {
		fields = append(fields, [2]string{"decided at", formatTime(*adm.DecidedAt)})
	}
	if len(adm.Receipt) > 0 {
		fields = append(fields, [2]string{"receipt", "signed by the server (check it: dml verify " + a.Name + " " + a.Version + " --key KEY.pub)"})
	}
	return fields
}

// printUnmet lists what the trust policy still needs, if anything.
func printUnmet(w io.Writer, a wire.Artifact) {
	if a.Admission == nil || len(a.Admission.Unmet) == 0 {
		return
	}
	fmt.Fprintln(w, "still needed:")
	for _, u := range a.Admission.Unmet {
		fmt.Fprintf(w, "  - %s\n", u)
	}
}
