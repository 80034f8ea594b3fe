package wire_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dmlproject/dml/api/wire"
	"github.com/opencontainers/go-digest"
)

// types is every type of the contract, by the name it is declared with.
// TestEveryTypeIsListed keeps it complete.
var types = map[string]any{
	"FsckRequest": wire.FsckRequest{}, "GCRequest": wire.GCRequest{},
	"PlannedRelease": wire.PlannedRelease{}, "ArtifactStatus": wire.ArtifactStatus{}, "DecidedRelease": wire.DecidedRelease{},
	"NotFoundDetail": wire.NotFoundDetail{}, "BuildBlockedDetail": wire.BuildBlockedDetail{}, "RoleDetail": wire.RoleDetail{},
	"ArtifactRefusedDetail": wire.ArtifactRefusedDetail{},
	"MaintenanceEvent":      wire.MaintenanceEvent[wire.FsckSummary]{},
	"FsckEvent":             wire.FsckEvent{}, "GCEvent": wire.GCEvent{},
	"Progress": wire.Progress{}, "Finding": wire.Finding{}, "MaintenanceError": wire.MaintenanceError{},
	"FsckSummary": wire.FsckSummary{}, "GCSummary": wire.GCSummary{},
	"Artifact": wire.Artifact{}, "Admission": wire.Admission{}, "ArtifactPage": wire.ArtifactPage{},
	"InclusionProof": wire.InclusionProof{}, "ConsistencyProof": wire.ConsistencyProof{},
	"AccessRecord": wire.AccessRecord{}, "AccessPage": wire.AccessPage{},
	"ErrorBody": wire.ErrorBody{}, "ErrorItem": wire.ErrorItem{},
	"Evidence": wire.Evidence{}, "EvidenceList": wire.EvidenceList{}, "EvidenceAdded": wire.EvidenceAdded{},
	"KeylessSigner":      wire.KeylessSigner{},
	"VerificationDetail": wire.VerificationDetail{},
	"Window":             wire.Window{}, "PlanDetails": wire.PlanDetails{}, "PlanRequest": wire.PlanRequest{},
	"ReleaseArtifactRef": wire.ReleaseArtifactRef{}, "GateSetting": wire.GateSetting{},
	"CreateReleaseRequest": wire.CreateReleaseRequest{}, "ApprovalRequest": wire.ApprovalRequest{},
	"DeploymentRequest": wire.DeploymentRequest{}, "DeploymentUpdate": wire.DeploymentUpdate{},
	"ReviewRequest": wire.ReviewRequest{}, "CancelRequest": wire.CancelRequest{},
	"Plan": wire.Plan{}, "ReleaseArtifact": wire.ReleaseArtifact{}, "Approval": wire.Approval{},
	"Deployment": wire.Deployment{}, "Review": wire.Review{}, "Edit": wire.Edit{}, "Gate": wire.Gate{},
	"Release": wire.Release{}, "ReleasePage": wire.ReleasePage{}, "DeploymentResult": wire.DeploymentResult{},
	"InvalidStateDetail": wire.InvalidStateDetail{},
	"GateDefaults":       wire.GateDefaults{},
	"EmergencyRequest":   wire.EmergencyRequest{}, "Emergency": wire.Emergency{},
	"ChangeSystemSetting": wire.ChangeSystemSetting{}, "ChangeSystemInfo": wire.ChangeSystemInfo{},
	"ChangePolicy": wire.ChangePolicy{}, "ChangePolicyUpdate": wire.ChangePolicyUpdate{},
	"OutsideWindowDetail": wire.OutsideWindowDetail{}, "ChangeRefDetail": wire.ChangeRefDetail{},
	"RiskDetail": wire.RiskDetail{}, "ChangeNotApprovedDetail": wire.ChangeNotApprovedDetail{},
	"Identity": wire.Identity{}, "TokenRequest": wire.TokenRequest{}, "IssuedToken": wire.IssuedToken{},
	"Token": wire.Token{}, "TokenList": wire.TokenList{},
	"TrustKeyRequest": wire.TrustKeyRequest{}, "TrustKey": wire.TrustKey{}, "TrustKeyList": wire.TrustKeyList{},
	"TrustPolicy": wire.TrustPolicy{},
	"TrustedRoot": wire.TrustedRoot{}, "RootSummary": wire.RootSummary{}, "RootAuthority": wire.RootAuthority{},
	"RootLog": wire.RootLog{}, "TrustedRootList": wire.TrustedRootList{},
	"SignerIdentityRequest": wire.SignerIdentityRequest{}, "SignerIdentity": wire.SignerIdentity{},
	"SignerIdentityList": wire.SignerIdentityList{},
	"RetentionPolicy":    wire.RetentionPolicy{}, "RetentionPolicyList": wire.RetentionPolicyList{},
	"RetentionRun": wire.RetentionRun{}, "RetentionItem": wire.RetentionItem{}, "RetentionSummary": wire.RetentionSummary{},
	"Quota": wire.Quota{}, "QuotaList": wire.QuotaList{}, "QuotaExceeded": wire.QuotaExceeded{},
	"Event": wire.Event{}, "EventPrincipal": wire.EventPrincipal{}, "EventPage": wire.EventPage{},
	"WebhookRequest": wire.WebhookRequest{}, "Webhook": wire.Webhook{}, "WebhookList": wire.WebhookList{},
	"Delivery": wire.Delivery{}, "DeliveryList": wire.DeliveryList{},
	"SSOProvider": wire.SSOProvider{}, "SSOProviderList": wire.SSOProviderList{},
	"SSOSessionRequest": wire.SSOSessionRequest{}, "SSOSession": wire.SSOSession{},
}

// TestEveryTypeIsListed fails for a type declared in the package (its
// non-test files) that the round trip below does not cover, and for a
// listed type that is no longer declared.
func TestEveryTypeIsListed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.IsExported() {
					declared[ts.Name.Name] = true
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("no types found in the package")
	}
	for name := range declared {
		if _, ok := types[name]; !ok {
			t.Errorf("wire.%s is not in the round trip's list: add it to types", name)
		}
	}
	for name := range types {
		if !declared[name] {
			t.Errorf("types lists %s, which the package no longer declares", name)
		}
	}
}

// TestEveryTypeRoundTrips fills every field of every type with a value
// of its own, encodes it, and decodes it again strictly (an unknown field
// is an error): the value must come back unchanged, and the JSON must
// carry every field by its lowerCamel name — nothing filled is dropped by
// omitempty, hidden with "-" or sent under a Go name.
func TestEveryTypeRoundTrips(t *testing.T) {
	for name, zero := range types {
		t.Run(name, func(t *testing.T) {
			typ := reflect.TypeOf(zero)
			v := reflect.New(typ)
			fill(v.Elem(), name)

			b, err := json.Marshal(v.Interface())
			if err != nil {
				t.Fatal(err)
			}
			back := reflect.New(typ)
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Fatalf("decoding %s: %v", b, err)
			}
			if !reflect.DeepEqual(v.Elem().Interface(), back.Elem().Interface()) {
				again, _ := json.Marshal(back.Interface())
				t.Fatalf("round trip changed the value:\n sent %s\n got  %s", b, again)
			}

			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			for _, key := range jsonKeys(t, typ) {
				if _, ok := doc[key]; !ok {
					t.Errorf("%s: field %q is missing from %s", name, key, b)
				}
			}
			if want := len(jsonKeys(t, typ)); len(doc) != want {
				t.Errorf("%s: %d keys in %s, want %d", name, len(doc), b, want)
			}
		})
	}
}

// TestEmptyListsAndNulls pins the encodings the documentation promises
// for values left empty: a receipt not yet issued is null and decodes as
// nil, omitted optional fields stay omitted.
func TestEmptyListsAndNulls(t *testing.T) {
	b, err := json.Marshal(wire.Admission{State: "quarantined", Unmet: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"state":"quarantined","unmet":[],"receipt":null}`; string(b) != want {
		t.Fatalf("empty admission = %s, want %s", b, want)
	}
	var a wire.Admission
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if a.Receipt != nil {
		t.Fatalf("receipt null decoded as %q, want nil", a.Receipt)
	}
	var u wire.DeploymentUpdate
	if err := json.Unmarshal([]byte(`{"status":"succeeded"}`), &u); err != nil {
		t.Fatal(err)
	}
	if u.Notes != nil || u.VerifiedDigests != nil {
		t.Fatalf("unset notes and digests decoded as %v, %v; want them left alone (nil)", u.Notes, u.VerifiedDigests)
	}
}

var lowerCamel = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)

// jsonKeys are the JSON names of typ's fields, those of embedded structs
// included; a field without a lowerCamel name fails the test.
func jsonKeys(t *testing.T, typ reflect.Type) []string {
	t.Helper()
	var keys []string
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		tag, ok := f.Tag.Lookup("json")
		if f.Anonymous && !ok {
			embedded := f.Type
			if embedded.Kind() == reflect.Pointer {
				embedded = embedded.Elem()
			}
			keys = append(keys, jsonKeys(t, embedded)...)
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if !lowerCamel.MatchString(name) {
			t.Errorf("%s.%s has the JSON name %q: every field is sent under a lowerCamel name", typ.Name(), f.Name, name)
			continue
		}
		keys = append(keys, name)
	}
	slices.Sort(keys)
	return keys
}

var (
	digestType = reflect.TypeFor[digest.Digest]()
	timeType   = reflect.TypeFor[time.Time]()
	rawType    = reflect.TypeFor[json.RawMessage]()
)

// fill sets every field of v to a non-zero value derived from path, so
// that no two fields hold the same value.
func fill(v reflect.Value, path string) {
	switch {
	case v.Type() == digestType:
		v.SetString(digest.FromString(path).String())
		return
	case v.Type() == timeType:
		at := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC).Add(time.Duration(len(path)) * time.Second)
		v.Set(reflect.ValueOf(at))
		return
	case v.Type() == rawType:
		v.SetBytes([]byte(`{"path":"` + path + `"}`))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), path+"[0]")
		fill(s.Index(1), path+"[1]")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, path+".key")
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, path+".value")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(v.Field(i), path+"."+f.Name)
			}
		}
	default:
		panic("fill: no value for " + v.Type().String() + " at " + path)
	}
}
