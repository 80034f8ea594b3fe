package names

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/errdef"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"payments/api", true},
		{"a", true},
		{"a.b_c__d---e/f0", true},
		{"Payments/api", false},
		{"payments//api", false},
		{"/payments", false},
		{"payments/", false},
		{"pay..ments", false},
		{"-payments", false},
		{"", false},
		{strings.Repeat("a", 256), false},
		{"../etc", false},
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNameInvalid) {
			t.Errorf("ValidateName(%q) error %v is not ErrNameInvalid", tc.name, err)
		}
	}
}

func TestValidateVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"1.4.2", true},
		{"v1.0.0-rc.1", true},
		{"_latest", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{".hidden", false},
		{"-x", false},
		{"1.0/2", false},
		{"1.0+build", false},
		{"", false},
		// The REST path's separator (/artifacts/NAME/versions/VERSION):
		// a version named so would make paths ambiguous.
		{"versions", false},
		{"Versions", true},
		{"versions2", true},
	} {
		err := ValidateVersion(tc.version)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateVersion(%q) = %v, want ok=%v", tc.version, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrVersionInvalid) {
			t.Errorf("ValidateVersion(%q) error %v is not ErrVersionInvalid", tc.version, err)
		}
	}
}

func TestValidateMediaType(t *testing.T) {
	for _, tc := range []struct {
		mt string
		ok bool
	}{
		{"application/octet-stream", true},
		{"application/vnd.oci.image.manifest.v1+json", true},
		{"application/vnd.dev.cosign.simplesigning.v1+json", true},
		{"Text/HTML", true},
		{"a/b", true},
		{"x/y!#$&^_.+-z", true},
		{strings.Repeat("a", 127) + "/" + strings.Repeat("b", 127), true},
		{strings.Repeat("a", 128) + "/b", false},
		{"a/" + strings.Repeat("b", 128), false},
		{"application/" + strings.Repeat("x", 20000), false},
		{"", false},
		{"application", false},
		{"application/", false},
		{"/json", false},
		{"application/json/x", false},
		{"application/json; charset=utf-8", false},
		{"appli cation/json", false},
		{"-application/json", false},
		{"application/-json", false},
		{"application/js\x00on", false},
		{"application/jsön", false},
		{"*/*", false},
	} {
		err := ValidateMediaType(tc.mt)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateMediaType(%.40q) = %v, want ok=%v", tc.mt, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrMediaTypeInvalid) || !errors.Is(err, errdef.ErrInvalidInput) || len(err.Error()) > 300) {
			t.Errorf("ValidateMediaType(%.40q) error %.300q is not a short ErrMediaTypeInvalid", tc.mt, err)
		}
	}
}

func TestParseContentType(t *testing.T) {
	for _, tc := range []struct {
		header, want string
		ok           bool
	}{
		{"", "", true},
		{"application/gzip", "application/gzip", true},
		{"text/plain; charset=utf-8", "text/plain", true},
		{" application/json ;x=y", "application/json", true},
		{"application/json garbage", "", false},
		{"; charset=utf-8", "", false},
		{"application/" + strings.Repeat("x", 20000), "", false},
	} {
		got, err := ParseContentType(tc.header)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseContentType(%.40q) = %q, %v; want %q, ok=%v", tc.header, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzNames: a name or tag that validates follows the OCI grammar in the
// ways the rest of dml relies on: no empty, "." or ".." path component,
// nothing outside [a-z0-9._/-] (tags: [A-Za-z0-9._-]), and a bounded
// length, so it is safe as a path, a key and a URL segment as is.
func FuzzNames(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, tag string) {
		if err := ValidateName(name); err == nil {
			if len(name) > maxNameLength || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789._/-") != "" {
				t.Fatalf("name %q validates", name)
			}
			for _, c := range strings.Split(name, "/") {
				if c == "" || c == "." || c == ".." || strings.Trim(c, "._-") == "" {
					t.Fatalf("name %q validates with the component %q", name, c)
				}
			}
		} else if !errors.Is(err, ErrNameInvalid) {
			t.Fatalf("ValidateName(%q) = %v", name, err)
		}
		if err := ValidateVersion(tag); err == nil {
			if len(tag) == 0 || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' ||
				strings.Trim(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
				t.Fatalf("tag %q validates", tag)
			}
		} else if !errors.Is(err, ErrVersionInvalid) {
			t.Fatalf("ValidateVersion(%q) = %v", tag, err)
		}
	})
}

func TestSuggest(t *testing.T) {
	for _, tc := range []struct {
		name       string
		candidates []string
		want       []string
	}{
		{"payments/ap", []string{"payments/api", "payments/worker", "payroll/api"}, []string{"payments/api"}},
		{"payment/api", []string{"payments/api", "payments/apis"}, []string{"payments/api", "payments/apis"}},
		{"1.4.3", []string{"1.4.2", "1.4.30", "2.0.0"}, []string{"1.4.2", "1.4.30"}},
		{"pay", []string{"payments/api", "payroll/api"}, []string{"payroll/api", "payments/api"}},
		{"zzzzzz", []string{"payments/api"}, []string{}},
		{"same", []string{"same"}, []string{}},
		{"ab", []string{"ac", "ad", "ae", "af"}, []string{"ac", "ad", "ae"}},
	} {
		if got := Suggest(tc.name, tc.candidates); !slices.Equal(got, tc.want) {
			t.Errorf("Suggest(%q, %q) = %q, want %q", tc.name, tc.candidates, got, tc.want)
		}
	}
}
