package metadatatest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// testSettings: a setting is absent until set, replaced by the next set,
// stored byte for byte, and every set records one event.
func testSettings(t *testing.T, m store) {
	if _, err := m.Setting(t.Context(), "gates.defaults"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("Setting before any set: %v; want ErrNotFound", err)
	}
	values := []string{`{"deploy:production": {"approvals": 2}}`, `{}`}
	for _, v := range values {
		s, err := m.SetSetting(t.Context(), admin, "gates.defaults", json.RawMessage(v))
		if err != nil {
			t.Fatalf("SetSetting(%s): %v", v, err)
		}
		checkUTC(t, "UpdatedAt", s.UpdatedAt)
		got, err := m.Setting(t.Context(), "gates.defaults")
		if err != nil {
			t.Fatalf("Setting: %v", err)
		}
		if string(got.Value) != v || got.UpdatedBy != admin.Name || !got.UpdatedAt.Equal(s.UpdatedAt) {
			t.Errorf("Setting = %s by %s at %v; want %s by %s at %v", got.Value, got.UpdatedBy, got.UpdatedAt, v, admin.Name, s.UpdatedAt)
		}
	}
	for _, bad := range []struct{ key, value string }{{"", `{}`}, {"k", `{`}, {"k", "\xff"}} {
		if _, err := m.SetSetting(t.Context(), admin, bad.key, json.RawMessage(bad.value)); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("SetSetting(%q, %q) = %v; want ErrInvalidInput", bad.key, bad.value, err)
		}
	}
	evs := checkEventCount(t, m, 2)
	for i, e := range evs {
		var d map[string]any
		_ = json.Unmarshal([]byte(values[i]), &d)
		checkEvent(t, e, lifecycle.ActionSettingSet, "gates.defaults", admin, d)
	}
}
