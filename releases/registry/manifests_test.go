package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/strictjson"
	"github.com/dmlproject/dml/store"
)

const (
	testConfig = `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`
	testLayer  = `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","size":3}`
	testOther  = `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9","size":3}`
)

// TestParseManifestRefusesAmbiguity: a manifest that names a key twice
// lists one set of layers to this registry and perhaps another to a
// client; it is refused as invalid. Before, the last key won.
func TestParseManifestRefusesAmbiguity(t *testing.T) {
	valid := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + testConfig + `,"layers":[` + testLayer + `]}`
	if _, err := ParseManifest([]byte(valid), ""); err != nil {
		t.Fatalf("valid manifest: %v", err)
	}
	for name, body := range map[string]string{
		"layers twice":            strings.TrimSuffix(valid, "}") + `,"layers":[` + testOther + `]}`,
		"layers twice by case":    strings.TrimSuffix(valid, "}") + `,"Layers":[` + testOther + `]}`,
		"digest twice in a layer": strings.Replace(valid, `"size":3}`, `"size":3,"digest":"sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"}`, 1),
		"a second manifest after": valid + " " + valid,
		"nested too deep":         strings.TrimSuffix(valid, "}") + `,"annotations":{"x":"y"},"extra":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
	} {
		if _, err := ParseManifest([]byte(body), ""); !errors.Is(err, ErrManifestInvalid) {
			t.Errorf("%s: ParseManifest = %v, want ErrManifestInvalid", name, err)
		}
	}
}

// FuzzParseManifest: a manifest that parses is unambiguous JSON of a known
// type whose references are all valid digests, and parsing it is stable:
// the same body parses to the same result, and so does the body decoded
// and encoded again (parse(format(x)) == parse(x)).
func FuzzParseManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		m, err := ParseManifest(body, contentType)
		if err != nil {
			if !errors.Is(err, ErrManifestInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("ParseManifest(%q) = %v, neither invalid nor unsupported", body, err)
			}
			return
		}
		if err := strictjson.Check(body); err != nil {
			t.Fatalf("ParseManifest accepted ambiguous JSON %q: %v", body, err)
		}
		if !knownManifestTypes[m.MediaType] {
			t.Fatalf("ParseManifest accepted media type %q", m.MediaType)
		}
		for _, r := range m.Refs {
			if err := store.ValidateDigest(r.Digest); err != nil {
				t.Fatalf("ParseManifest(%q) refers to %q", body, r.Digest)
			}
		}
		if m.Subject != "" && store.ValidateDigest(m.Subject) != nil {
			t.Fatalf("ParseManifest(%q) has the subject %q", body, m.Subject)
		}
		if again, err := ParseManifest(body, contentType); err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("ParseManifest(%q) is not stable: %+v, then %+v, %v", body, m, again, err)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		reencoded, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ParseManifest(reencoded, contentType); err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("ParseManifest(%q) = %+v, but its re-encoding %q gives %+v, %v", body, m, reencoded, again, err)
		}
	})
}
