package sso

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dmlproject/dml/internal/strictjson"
	"github.com/dmlproject/dml/releases/access"
	"github.com/dmlproject/dml/releases/errdef"
)

// ErrConfig reports an OIDC configuration file that cannot be used; the
// message names the provider and the field.
var ErrConfig = errors.New("invalid OIDC configuration")

// File is the OIDC configuration file (dml serve --oidc-config).
type File struct {
	Providers []ProviderConfig `json:"providers"`
}

// ProviderConfig is one provider, as written in the file. docs/sso.md is
// its reference.
type ProviderConfig struct {
	// Name is how dml names the provider: in URLs (/ui/sso/NAME/...), in
	// `dml login --provider`, in records.
	Name string `json:"name"`
	// DisplayName is shown on the sign-in button; default Name.
	DisplayName string `json:"displayName,omitempty"`
	// Issuer is the provider's issuer URL, exactly as its ID tokens
	// name it (discovery is read from ISSUER/.well-known/openid-configuration).
	Issuer string `json:"issuer"`
	// ClientID and the secret (ClientSecret, or ClientSecretFile holding
	// it) are the console's confidential client.
	ClientID         string `json:"clientId"`
	ClientSecret     string `json:"clientSecret,omitempty"`
	ClientSecretFile string `json:"clientSecretFile,omitempty"`
	// CLIClientID is the public (native) client `dml login` uses, with
	// PKCE and a loopback redirect; empty: the CLI cannot sign in here.
	CLIClientID string `json:"cliClientId,omitempty"`
	// Scopes requested; default openid, email, profile, and groups when
	// the claim is groups. openid is always requested.
	Scopes []string `json:"scopes,omitempty"`
	// Claim is the claim mapped (e.g. groups, email); Roles and
	// Environments map its values.
	Claim        string              `json:"claim"`
	Roles        map[string][]string `json:"roles"`
	Environments map[string][]string `json:"environments,omitempty"`
	// SessionTTL is how long a sign-in lasts (a Go duration, at most
	// 24h); default 8h.
	SessionTTL string `json:"sessionTTL,omitempty"`
}

// Settings is a provider's validated configuration.
type Settings struct {
	Name, DisplayName, Issuer string
	ClientID, ClientSecret    string
	CLIClientID               string
	Scopes                    []string
	Mapping                   access.Mapping
	TTL                       time.Duration
}

var providerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// maxConfigFile bounds the configuration file.
const maxConfigFile = 1 << 20

// LoadConfig reads and checks the configuration file at path: strict
// JSON (no unknown or repeated field), at least one provider, each one
// complete. A client secret file is read here.
func LoadConfig(path string) ([]Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, maxConfigFile)
	}
	return ParseConfig(data, path)
}

// ParseConfig is LoadConfig of data read from path (path names the file
// in errors, and relative secret files are read from its directory).
func ParseConfig(data []byte, path string) ([]Settings, error) {
	if err := strictjson.Check(data); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	// encoding/json matches field names regardless of case; a file is
	// read the way it is documented, so names must match exactly.
	if err := exactFields(data); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if len(f.Providers) == 0 {
		return nil, fmt.Errorf("%w: %s: providers: at least one provider is needed", ErrConfig, path)
	}
	var out []Settings
	seen := map[string]bool{}
	for i, pc := range f.Providers {
		s, err := pc.settings()
		if err != nil {
			name := pc.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			return nil, fmt.Errorf("%w: %s: provider %s: %v", ErrConfig, path, name, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: %s: provider %s: name: configured twice", ErrConfig, path, s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
}

func (pc ProviderConfig) settings() (Settings, error) {
	s := Settings{Name: pc.Name, DisplayName: pc.DisplayName, Issuer: pc.Issuer, ClientID: pc.ClientID, CLIClientID: pc.CLIClientID}
	if !providerNameRE.MatchString(pc.Name) {
		return s, fmt.Errorf("name: %q must be 1-63 lower-case letters, digits and '-'", pc.Name)
	}
	if s.DisplayName == "" {
		s.DisplayName = pc.Name
	}
	u, err := url.Parse(pc.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) || u.RawQuery != "" || u.Fragment != "" {
		return s, fmt.Errorf("issuer: %q must be an https URL (http only on loopback), without query or fragment", pc.Issuer)
	}
	if pc.ClientID == "" {
		return s, errors.New("clientId: required (the console's client)")
	}
	switch {
	case pc.ClientSecret != "" && pc.ClientSecretFile != "":
		return s, errors.New("clientSecret and clientSecretFile: set one, not both")
	case pc.ClientSecretFile != "":
		b, err := os.ReadFile(pc.ClientSecretFile)
		if err != nil {
			return s, fmt.Errorf("clientSecretFile: %v", err)
		}
		s.ClientSecret = strings.TrimSpace(string(b))
		if s.ClientSecret == "" {
			return s, fmt.Errorf("clientSecretFile: %s is empty", pc.ClientSecretFile)
		}
	case pc.ClientSecret != "":
		s.ClientSecret = pc.ClientSecret
	default:
		return s, errors.New("clientSecret or clientSecretFile: required (the console's client is confidential)")
	}
	if pc.CLIClientID == pc.ClientID {
		return s, errors.New("cliClientId: must be a client of its own (a public client, without secret)")
	}
	s.Mapping = access.Mapping{Claim: pc.Claim, Roles: map[string][]access.Role{}, Environments: pc.Environments}
	for v, roles := range pc.Roles {
		for _, r := range roles {
			s.Mapping.Roles[v] = append(s.Mapping.Roles[v], access.Role(r))
		}
		if roles != nil && s.Mapping.Roles[v] == nil {
			s.Mapping.Roles[v] = []access.Role{}
		}
	}
	if err := s.Mapping.Validate(); err != nil {
		// The mapping's message names the field; the sentinel's prefix
		// says nothing more in a configuration error.
		return s, errors.New(strings.TrimPrefix(err.Error(), errdef.ErrInvalidInput.Error()+": "))
	}
	s.Scopes = pc.Scopes
	if len(s.Scopes) == 0 {
		s.Scopes = []string{"openid", "email", "profile"}
		if pc.Claim == "groups" {
			s.Scopes = append(s.Scopes, "groups")
		}
	} else if !slices.Contains(s.Scopes, "openid") {
		s.Scopes = append([]string{"openid"}, s.Scopes...)
	}
	s.TTL = access.DefaultSessionTTL
	if pc.SessionTTL != "" {
		d, err := time.ParseDuration(pc.SessionTTL)
		if err != nil || d <= 0 || d > access.MaxSessionTTL {
			return s, fmt.Errorf("sessionTTL: %q must be a positive duration such as 8h, at most %s", pc.SessionTTL, access.MaxSessionTTL)
		}
		s.TTL = d
	}
	return s, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// exactFields refuses a field of the file, or of a provider, that is not
// spelled exactly as documented.
func exactFields(data []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	if err := known(top, reflect.TypeFor[File](), ""); err != nil {
		return err
	}
	var list []map[string]json.RawMessage
	if raw, ok := top["providers"]; ok {
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("providers: %v", err)
		}
	}
	for i, p := range list {
		if err := known(p, reflect.TypeFor[ProviderConfig](), fmt.Sprintf("providers[%d].", i)); err != nil {
			return err
		}
	}
	return nil
}

func known(obj map[string]json.RawMessage, typ reflect.Type, prefix string) error {
	names := map[string]bool{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names[name] = true
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !names[k] {
			return fmt.Errorf("unknown field %q%s", prefix+k, suggestion(k, names))
		}
	}
	return nil
}

// suggestion names the field k was probably meant to be.
func suggestion(k string, names map[string]bool) string {
	for n := range names {
		if strings.EqualFold(n, k) {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return ""
}
