package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/dmlproject/dml/internal/strictjson"
)

// FuzzCheck: Check accepts only what encoding/json accepts; it refuses
// valid JSON only for a repeated key or depth; and what it accepts stays
// acceptable after decoding and encoding again.
func FuzzCheck(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		err := strictjson.Check(b)
		valid := json.Valid(b)
		if err != nil {
			var se *strictjson.Error
			if !errors.As(err, &se) {
				t.Fatalf("Check(%q) = %T %v, want *strictjson.Error", b, err, err)
			}
			if valid && !errors.Is(err, strictjson.ErrDuplicateKey) && !errors.Is(err, strictjson.ErrTooDeep) {
				t.Fatalf("Check(%q) = %v, but it is valid JSON", b, err)
			}
			return
		}
		if !valid {
			t.Fatalf("Check accepted %q, which encoding/json refuses", b)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("Check accepted %q, which does not decode: %v", b, err)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encoding %q: %v", b, err)
		}
		if err := strictjson.Check(again); err != nil {
			t.Fatalf("Check accepted %q but not its re-encoding %q: %v", b, again, err)
		}
	})
}
