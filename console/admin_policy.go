package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
	"github.com/dmlproject/dml/signing"
)

// The trust policy editor and the gate defaults: the two documents an
// admin sets that decide what is admitted and how many approvals a gate
// needs.

func (c *Console) routeAdminPolicy(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"admin/policy", c.page(func(v *view) error {
		if err := v.require("trust_policy_set"); err != nil {
			return err
		}
		return v.policyPage(nil, nil)
	}))
	m.HandleFunc("POST "+Prefix+"admin/policy", c.page(func(v *view) error {
		if err := v.require("trust_policy_set"); err != nil {
			return err
		}
		typed := policyEditorForm{Text: v.r.PostFormValue("policy"), Base: v.r.PostFormValue("base")}
		cur, _, err := v.currentPolicy()
		if err != nil {
			return err
		}
		// The editor was opened on version Base. Saving over a version
		// another admin set since would undo their change unseen: say
		// so, keep the text, and let the admin save again knowingly.
		if typed.Base != strconv.FormatInt(cur.Version, 10) {
			p := &adminProblem{Status: http.StatusConflict, Lines: []string{fmt.Sprintf(
				"The policy changed while you edited it: it is now version %d, set by %s at %s. Your text is kept below; compare it with the current policy, then save again to replace it.",
				cur.Version, cur.CreatedBy, cur.CreatedAt.UTC().Format(time.RFC3339))}}
			return v.policyPage(&typed, p)
		}
		pv, err := v.c.dml.Trust.SetTrustPolicy(v.r.Context(), v.p, []byte(typed.Text))
		if err != nil {
			if p := adminFormProblem(err); p != nil {
				return v.policyPage(&typed, p)
			}
			return err
		}
		return v.redirect(Prefix+"admin/policy", fmt.Sprintf("Trust policy version %d saved; quarantined artifacts were re-evaluated.", pv.Version))
	}))

	m.HandleFunc("GET "+Prefix+"admin/gates", c.page(func(v *view) error {
		if err := v.require("gate_defaults_set"); err != nil {
			return err
		}
		return v.gateDefaultsPage(nil, nil)
	}))
	m.HandleFunc("POST "+Prefix+"admin/gates", c.page(func(v *view) error {
		if err := v.require("gate_defaults_set"); err != nil {
			return err
		}
		typed := readGateDefaultsForm(v.r)
		defaults, p := typed.defaults()
		if p == nil {
			_, err := v.c.dml.Releases.SetGateDefaults(v.r.Context(), v.p, defaults)
			if err == nil {
				return v.redirect(Prefix+"admin/gates", "Gate defaults saved; they apply to the gates of new releases and of new plans.")
			}
			if p = adminFormProblem(err); p == nil {
				return err
			}
		}
		return v.gateDefaultsPage(&typed, p)
	}))
}

// policyEditorForm is the editor as submitted: the text, and the version it
// was opened on ("0": none was set).
type policyEditorForm struct {
	Text string
	Base string
}

type policyEditorData struct {
	Tabs []navItem
	// Current is the policy in force; Version 0 when none was set.
	Current policyStamp
	Form    policyEditorForm
	Problem *adminProblem
	// Signers are the active signer IDs a rule may name.
	Keys, Identities []string
	// Unknown are the signer IDs the current policy names that are not
	// active signers: rules naming only them admit nothing.
	Unknown []string
	Example string
	// Next is the version saving makes.
	Next int64
}

// policyStamp is the current policy's stamp (the trust package's
// PolicyVersion without the document, which the editor holds).
type policyStamp struct {
	Version   int64
	CreatedBy string
	CreatedAt time.Time
}

// examplePolicy is shown next to an empty editor.
const examplePolicy = `{
  "rules": [
    {
      "match": "payments/**",
      "signatures": {"keys": ["ci-payments"], "threshold": 1},
      "attestations": [
        {"predicateType": "https://in-toto.io/attestation/test-result/v0.1", "keys": ["ci-payments"]},
        {"predicateType": "https://slsa.dev/provenance/v1", "keys": ["ci-payments"]}
      ]
    }
  ]
}`

// currentPolicy is the policy in force, with its document indented for
// the editor; Version 0 when none was set.
func (v *view) currentPolicy() (policyStamp, string, error) {
	pv, err := v.c.dml.Trust.TrustPolicy(v.r.Context())
	if errors.Is(err, errdef.ErrNotFound) {
		return policyStamp{}, "", nil
	}
	if err != nil {
		return policyStamp{}, "", err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, pv.Document, "", "  "); err != nil {
		return policyStamp{}, "", fmt.Errorf("the stored trust policy version %d: %w", pv.Version, err)
	}
	return policyStamp{Version: pv.Version, CreatedBy: pv.CreatedBy, CreatedAt: pv.CreatedAt}, buf.String(), nil
}

// policyPage shows the editor: the text typed when typed is set (a
// refused save), else the policy in force.
func (v *view) policyPage(typed *policyEditorForm, p *adminProblem) error {
	cur, text, err := v.currentPolicy()
	if err != nil {
		return err
	}
	d := policyEditorData{Tabs: v.adminTabs(), Current: cur, Problem: p, Example: examplePolicy, Next: cur.Version + 1,
		Form: policyEditorForm{Text: text, Base: strconv.FormatInt(cur.Version, 10)}}
	if typed != nil {
		// The text stays as typed; Base moves to the version in force, so
		// that saving again is a deliberate replacement of it.
		d.Form.Text = typed.Text
	}
	active, err := v.activeSigners()
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(active)) {
		if active[id] == "key" {
			d.Keys = append(d.Keys, id)
		} else {
			d.Identities = append(d.Identities, id)
		}
	}
	if text != "" {
		if pol, err := signing.ParsePolicy([]byte(text)); err == nil {
			d.Unknown = unknownSigners(pol, active)
		}
	}
	return v.render(adminStatus(p), "admin_policy", "Trust policy", d)
}

// activeSigners maps each signer ID that counts to "key" or "identity".
func (v *view) activeSigners() (map[string]string, error) {
	ctx := v.r.Context()
	keys, err := v.c.dml.Trust.TrustKeys(ctx)
	if err != nil {
		return nil, err
	}
	roots, err := v.c.dml.Trust.TrustedRoots(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := v.c.dml.Trust.Identities(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range keys {
		if k.RevokedAt == nil {
			out[k.ID] = "key"
		}
	}
	usable := map[string]bool{}
	for _, r := range roots {
		usable[r.ID] = r.RevokedAt == nil
	}
	for _, id := range ids {
		if id.RevokedAt == nil && usable[id.Root] {
			out[id.ID] = "identity"
		}
	}
	return out, nil
}

// unknownSigners lists, sorted, the signer IDs pol names that are not
// active.
func unknownSigners(pol *signing.Policy, active map[string]string) []string {
	seen := map[string]bool{}
	note := func(ids []string) {
		for _, id := range ids {
			if _, ok := active[id]; !ok {
				seen[id] = true
			}
		}
	}
	for _, r := range pol.Rules {
		if r.Signatures != nil {
			note(r.Signatures.Keys)
		}
		for _, a := range r.Attestations {
			note(a.Keys)
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// The gate defaults form: one number field per gate. Plan, build, close
// and deploy:* are always offered; deploy:ENV for each environment that
// has a default, and one empty row to add an environment.

// defaultableGates are the gates the form always offers, in the order of a
// release's life.
var defaultableGates = []struct{ Gate, Help string }{
	{lifecycle.GatePlan, "authorises the plan"},
	{lifecycle.GateBuild, "signs off the tested package and seals the release"},
	{"deploy:*", "authorises a deployment, for every environment without a default of its own"},
	{lifecycle.GateClose, "accepts the post-implementation review"},
}

// gateDefaultField is the form's field name for a gate.
const gateDefaultField = "approvals:"

// gateDefaultsForm is the form as typed: approvals by gate, and the new row.
type gateDefaultsForm struct {
	Values       map[string]string
	NewEnv       string
	NewApprovals string
}

func readGateDefaultsForm(r *http.Request) gateDefaultsForm {
	f := gateDefaultsForm{Values: map[string]string{}, NewEnv: strings.TrimSpace(r.PostFormValue("newEnv")), NewApprovals: strings.TrimSpace(r.PostFormValue("newApprovals"))}
	for name, vals := range r.PostForm {
		if gate, ok := strings.CutPrefix(name, gateDefaultField); ok && len(vals) > 0 {
			f.Values[gate] = strings.TrimSpace(vals[0])
		}
	}
	return f
}

// defaults reads the numbers; an empty field is no default (a quorum of
// one). The domain checks the gates and the bounds.
func (f gateDefaultsForm) defaults() (map[string]lifecycle.GateSetting, *adminProblem) {
	out := map[string]lifecycle.GateSetting{}
	set := func(gate, value string) *adminProblem {
		if value == "" {
			return nil
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			return adminInvalid(fmt.Sprintf("gate %s: %q is not a whole number of approvals", gate, value))
		}
		out[gate] = lifecycle.GateSetting{Approvals: n}
		return nil
	}
	for _, gate := range slices.Sorted(maps.Keys(f.Values)) {
		if p := set(gate, f.Values[gate]); p != nil {
			return nil, p
		}
	}
	switch {
	case f.NewEnv == "" && f.NewApprovals != "":
		return nil, adminInvalid("name the environment whose deploy gate needs " + f.NewApprovals + " approvals")
	case f.NewEnv != "":
		gate := "deploy:" + strings.TrimPrefix(f.NewEnv, "deploy:")
		if _, dup := out[gate]; dup {
			return nil, adminInvalid("gate " + gate + " already has a default above")
		}
		if f.NewApprovals == "" {
			return nil, adminInvalid("gate " + gate + ": give its number of approvals")
		}
		if p := set(gate, f.NewApprovals); p != nil {
			return nil, p
		}
	}
	return out, nil
}

type gateDefaultsData struct {
	Tabs      []navItem
	Rows      []gateDefaultRow
	NewEnv    string
	NewValue  string
	UpdatedBy string
	UpdatedAt time.Time
	Problem   *adminProblem
}

type gateDefaultRow struct {
	Gate, Help, Value string
	Field             string
}

// gateDefaultsPage shows the defaults in force, or the form as typed when a
// save was refused.
func (v *view) gateDefaultsPage(typed *gateDefaultsForm, p *adminProblem) error {
	gates, st, err := v.c.dml.Releases.GateDefaults(v.r.Context())
	if err != nil {
		return err
	}
	d := gateDefaultsData{Tabs: v.adminTabs(), UpdatedBy: st.UpdatedBy, UpdatedAt: st.UpdatedAt, Problem: p}
	values := map[string]string{}
	for g, s := range gates {
		values[g] = strconv.Itoa(s.Approvals)
	}
	if typed != nil {
		values, d.NewEnv, d.NewValue = typed.Values, typed.NewEnv, typed.NewApprovals
	}
	for _, g := range defaultableGates {
		d.Rows = append(d.Rows, gateDefaultRow{Gate: g.Gate, Help: g.Help, Value: values[g.Gate], Field: gateDefaultField + g.Gate})
	}
	for _, g := range slices.Sorted(maps.Keys(values)) {
		if slices.ContainsFunc(defaultableGates, func(f struct{ Gate, Help string }) bool { return f.Gate == g }) {
			continue
		}
		env := strings.TrimPrefix(g, "deploy:")
		d.Rows = append(d.Rows, gateDefaultRow{Gate: g, Help: "authorises a deployment to " + env, Value: values[g], Field: gateDefaultField + g})
	}
	return v.render(adminStatus(p), "admin_gates", "Gate defaults", d)
}
