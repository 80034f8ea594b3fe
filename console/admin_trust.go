package console

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dmlproject/dml/releases/trust"
)

// The signers page: the trusted keys, the keyless identities and the
// Sigstore trusted roots those identities are verified against; each
// listed, added and revoked. One page, because an identity names a root
// and a policy names keys and identities alike.

func (c *Console) routeAdminTrust(m *http.ServeMux) {
	m.HandleFunc("GET "+Prefix+"admin/trust", c.page(func(v *view) error {
		if err := v.require("trust_key_add"); err != nil {
			return err
		}
		return v.trustPage(trustForms{})
	}))

	m.HandleFunc("POST "+Prefix+"admin/trust/keys", c.page(func(v *view) error {
		if err := v.require("trust_key_add"); err != nil {
			return err
		}
		f := keyForm{ID: strings.TrimSpace(v.r.PostFormValue("id")), PublicKey: v.r.PostFormValue("publicKey"), Comment: v.r.PostFormValue("comment")}
		k, err := v.c.dml.Trust.AddTrustKey(v.r.Context(), v.p, trust.AddTrustKeyRequest{ID: f.ID, PublicKey: f.PublicKey, Comment: f.Comment})
		if err != nil {
			if p := adminFormProblem(err); p != nil {
				return v.trustPage(trustForms{Key: f, KeyProblem: p})
			}
			return err
		}
		return v.redirect(Prefix+"admin/trust#keys", "Key "+k.ID+" ("+k.Algorithm+") is trusted; quarantined artifacts were re-evaluated.")
	}))
	m.HandleFunc("POST "+Prefix+"admin/trust/keys/revoke", c.page(func(v *view) error {
		if err := v.require("trust_key_revoke"); err != nil {
			return err
		}
		id := v.r.PostFormValue("id")
		if err := v.c.dml.Trust.RevokeTrustKey(v.r.Context(), v.p, id); err != nil {
			return err
		}
		return v.redirect(Prefix+"admin/trust#keys", "Key "+id+" revoked: evidence it signed no longer counts for new admissions.")
	}))

	m.HandleFunc("POST "+Prefix+"admin/trust/identities", c.page(func(v *view) error {
		if err := v.require("trust_identity_add"); err != nil {
			return err
		}
		f := readIdentityForm(v.r)
		claims, p := f.claims()
		if p == nil {
			id, err := v.c.dml.Trust.AddIdentity(v.r.Context(), v.p, trust.Identity{
				ID: f.ID, Root: f.Root, Issuer: f.Issuer, Subject: f.Subject, SubjectRegexp: f.SubjectRegexp, Claims: claims,
			})
			if err == nil {
				return v.redirect(Prefix+"admin/trust#identities", "Identity "+id.ID+" is trusted; quarantined artifacts were re-evaluated.")
			}
			if p = adminFormProblem(err); p == nil {
				return err
			}
		}
		return v.trustPage(trustForms{Identity: f, IdentityProblem: p})
	}))
	m.HandleFunc("POST "+Prefix+"admin/trust/identities/revoke", c.page(func(v *view) error {
		if err := v.require("trust_identity_revoke"); err != nil {
			return err
		}
		id := v.r.PostFormValue("id")
		if err := v.c.dml.Trust.RevokeIdentity(v.r.Context(), v.p, id); err != nil {
			return err
		}
		return v.redirect(Prefix+"admin/trust#identities", "Identity "+id+" revoked: evidence it signed no longer counts for new admissions.")
	}))

	m.HandleFunc("POST "+Prefix+"admin/trust/roots", c.page(func(v *view) error {
		if err := v.require("trust_root_put"); err != nil {
			return err
		}
		f := rootForm{ID: strings.TrimSpace(v.r.PostFormValue("id")), Document: v.r.PostFormValue("document")}
		r, installed, err := v.c.dml.Trust.PutTrustedRoot(v.r.Context(), v.p, f.ID, []byte(strings.TrimSpace(f.Document)))
		if err != nil {
			if p := adminFormProblem(err); p != nil {
				return v.trustPage(trustForms{Root: f, RootProblem: p})
			}
			return err
		}
		msg := "Trusted root " + r.ID + " is already this document; nothing changed."
		if installed {
			msg = "Trusted root " + r.ID + " version " + strconv.FormatInt(r.Version, 10) + " installed."
		}
		return v.redirect(Prefix+"admin/trust#roots", msg)
	}))
	m.HandleFunc("POST "+Prefix+"admin/trust/roots/revoke", c.page(func(v *view) error {
		if err := v.require("trust_root_revoke"); err != nil {
			return err
		}
		id := v.r.PostFormValue("id")
		if err := v.c.dml.Trust.RevokeTrustedRoot(v.r.Context(), v.p, id); err != nil {
			return err
		}
		return v.redirect(Prefix+"admin/trust#roots", "Trusted root "+id+" revoked: the identities bound to it no longer count.")
	}))
}

// The forms of the page as typed, and the problem of the one that failed.
type trustForms struct {
	Key             keyForm
	KeyProblem      *adminProblem
	Identity        identityForm
	IdentityProblem *adminProblem
	Root            rootForm
	RootProblem     *adminProblem
}

type keyForm struct{ ID, PublicKey, Comment string }

type rootForm struct{ ID, Document string }

type identityForm struct {
	ID, Root, Issuer, Subject, SubjectRegexp string
	// Claims is one "name=value" a line.
	Claims string
}

func readIdentityForm(r *http.Request) identityForm {
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	return identityForm{ID: f("id"), Root: f("root"), Issuer: f("issuer"), Subject: f("subject"), SubjectRegexp: f("subjectRegexp"), Claims: r.PostFormValue("claims")}
}

// claims reads the claims text; the domain checks the names and values.
func (f identityForm) claims() (map[string]string, *adminProblem) {
	out := map[string]string{}
	for _, line := range strings.Split(f.Claims, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, adminInvalid("claim " + strings.TrimSpace(line) + ": write one claim a line, as name=value")
		}
		name = strings.TrimSpace(name)
		if _, dup := out[name]; dup {
			return nil, adminInvalid("claim " + name + " is given twice")
		}
		out[name] = strings.TrimSpace(value)
	}
	return out, nil
}

type trustData struct {
	Tabs []navItem
	trustForms
	Keys       []trustKeyRow
	Identities []trustIdentityRow
	Roots      []trustRootRow
	// UsableRoots are the roots an identity may name: installed, not
	// revoked.
	UsableRoots []string
	ClaimNames  []string
}

type trustKeyRow struct {
	trust.TrustKey
	State string // active or revoked
}

type trustIdentityRow struct {
	trust.Identity
	State string // active, revoked, or inactive (its root is revoked or gone)
	// Claims sorted, as name=value.
	ClaimList []string
}

type trustRootRow struct {
	trust.TrustedRoot
	State   string
	Summary trust.RootSummary
}

func signerState(revoked bool) string {
	if revoked {
		return "revoked"
	}
	return "active"
}

func (v *view) trustPage(forms trustForms) error {
	ctx := v.r.Context()
	keys, err := v.c.dml.Trust.TrustKeys(ctx)
	if err != nil {
		return err
	}
	roots, err := v.c.dml.Trust.TrustedRoots(ctx)
	if err != nil {
		return err
	}
	ids, err := v.c.dml.Trust.Identities(ctx)
	if err != nil {
		return err
	}
	d := trustData{Tabs: v.adminTabs(), trustForms: forms, ClaimNames: trust.ClaimNames}
	for _, k := range keys {
		d.Keys = append(d.Keys, trustKeyRow{TrustKey: k, State: signerState(k.RevokedAt != nil)})
	}
	rootState := map[string]string{}
	for _, r := range roots {
		sum, err := r.Summary()
		if err != nil {
			return err
		}
		row := trustRootRow{TrustedRoot: r, State: signerState(r.RevokedAt != nil), Summary: sum}
		rootState[r.ID] = row.State
		if row.State == "active" {
			d.UsableRoots = append(d.UsableRoots, r.ID)
		}
		d.Roots = append(d.Roots, row)
	}
	for _, id := range ids {
		row := trustIdentityRow{Identity: id, State: signerState(id.RevokedAt != nil)}
		if row.State == "active" && rootState[id.Root] != "active" {
			row.State = "inactive"
		}
		for _, name := range slices.Sorted(maps.Keys(id.Claims)) {
			row.ClaimList = append(row.ClaimList, name+"="+id.Claims[name])
		}
		d.Identities = append(d.Identities, row)
	}
	status := http.StatusOK
	for _, p := range []*adminProblem{forms.KeyProblem, forms.IdentityProblem, forms.RootProblem} {
		if p != nil {
			status = p.Status
		}
	}
	return v.render(status, "admin_trust", "Signers", d)
}
