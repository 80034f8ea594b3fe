package strictjson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dmlproject/dml/internal/strictjson"
)

func TestCheck(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		name    string
		in      string
		want    error // nil: accepted
		pointer string
	}{
		{"object", `{"a":1,"b":[true,null,"x"],"c":{"d":{}}}`, nil, ""},
		{"scalar", `  42 `, nil, ""},
		{"whitespace after", "{\"a\":1}\r\n\t ", nil, ""},
		{"same key in sibling objects", `[{"a":1},{"a":2}]`, nil, ""},
		{"same key at two depths", `{"a":{"a":1}}`, nil, ""},
		{"max depth", deep(strictjson.MaxDepth), nil, ""},
		{"empty", ``, strictjson.ErrSyntax, ""},
		{"only spaces", `   `, strictjson.ErrSyntax, ""},
		{"truncated", `{"a":[1,`, strictjson.ErrSyntax, "/a/1"},
		{"second value", `{"a":1} {"a":2}`, strictjson.ErrTrailingData, ""},
		{"garbage after", `{"a":1}x`, strictjson.ErrTrailingData, ""},
		{"NUL after", "{\"a\":1}\x00", strictjson.ErrTrailingData, ""},
		{"comma after", `[1],`, strictjson.ErrTrailingData, ""},
		{"duplicate key", `{"a":1,"a":2}`, strictjson.ErrDuplicateKey, "/a"},
		{"duplicate key deep", `{"x":[{"y":{"a":1,"b":2,"a":3}}]}`, strictjson.ErrDuplicateKey, "/x/0/y/a"},
		{"duplicate by escape", `{"name":1,"n\u0061me":2}`, strictjson.ErrDuplicateKey, "/name"},
		{"duplicate by case", `{"name":1,"NAME":2}`, strictjson.ErrDuplicateKey, "/NAME"},
		{"duplicate by long s", `{"s":1,"ſ":2}`, strictjson.ErrDuplicateKey, "/ſ"},
		{"duplicate by kelvin sign", `{"k":1,"K":2}`, strictjson.ErrDuplicateKey, "/K"},
		{"pointer escapes", `{"a/b":{"c~d":1,"c~d":1}}`, strictjson.ErrDuplicateKey, "/a~1b/c~0d"},
		{"too deep", deep(strictjson.MaxDepth + 1), strictjson.ErrTooDeep, ""},
		{"too deep objects", strings.Repeat(`{"a":`, strictjson.MaxDepth+1) + "1" + strings.Repeat("}", strictjson.MaxDepth+1), strictjson.ErrTooDeep, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := strictjson.Check([]byte(tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tc.in, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check(%q) = %v, want %v", tc.in, err, tc.want)
			}
			var se *strictjson.Error
			if !errors.As(err, &se) {
				t.Fatalf("Check(%q) = %T, want *strictjson.Error", tc.in, err)
			}
			if tc.pointer != "" && se.Pointer != tc.pointer {
				t.Errorf("Check(%q) pointer %q, want %q", tc.in, se.Pointer, tc.pointer)
			}
		})
	}
}

// TestCheckAgreesWithDecoder: whatever Check accepts, encoding/json
// accepts too, and what encoding/json refuses as syntax Check refuses.
func TestCheckAgreesWithDecoder(t *testing.T) {
	for _, in := range []string{`{"a":1}`, `[1,2`, `{"a" 1}`, `"\x"`, `tru`, `{"a":01}`, `[1,]`, `{,}`, `"\ud800"`, `{"a":"\u00"}`} {
		var v any
		jsonErr := json.Unmarshal([]byte(in), &v)
		checkErr := strictjson.Check([]byte(in))
		if (jsonErr == nil) != (checkErr == nil) {
			t.Errorf("%q: encoding/json says %v, Check says %v", in, jsonErr, checkErr)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	var v struct{ Name string }
	if err := strictjson.Unmarshal([]byte(`{"name":"a"}`), &v); err != nil || v.Name != "a" {
		t.Fatalf("Unmarshal = %v, %+v", err, v)
	}
	if err := strictjson.Unmarshal([]byte(`{"name":"a","Name":"b"}`), &v); !errors.Is(err, strictjson.ErrDuplicateKey) {
		t.Fatalf("Unmarshal of a duplicate key = %v", err)
	}
}
