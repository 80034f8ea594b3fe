package metadatatest

import (
	"encoding/json"
	"errors"
	"fmt"
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

// testModifySetting: fn sees the setting as stored (found false before
// the first set); a value is stored with one event, nil changes nothing
// and records nothing, an error is returned as it is. Writers racing to
// set a key only if it is absent: one stores its value, the others see
// it, so every writer ends up agreeing on one value.
func testModifySetting(t *testing.T, m store) {
	ctx := t.Context()
	const key = "pinned"
	ifAbsent := func(v string) func(lifecycle.Setting, bool) (json.RawMessage, error) {
		return func(_ lifecycle.Setting, found bool) (json.RawMessage, error) {
			if found {
				return nil, nil
			}
			return json.RawMessage(v), nil
		}
	}
	const writers = 8
	stored := make([]string, writers)
	race(writers, func(i int) {
		s, err := m.ModifySetting(ctx, admin, key, ifAbsent(fmt.Sprintf(`{"writer":%d}`, i)))
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
		stored[i] = string(s.Value)
	})
	got, err := m.Setting(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stored {
		if s != string(got.Value) {
			t.Errorf("writer %d saw %s stored, the setting is %s", i, s, got.Value)
		}
	}
	checkEventCount(t, m, 1)

	boom := errors.New("refused")
	if _, err := m.ModifySetting(ctx, admin, key, func(cur lifecycle.Setting, found bool) (json.RawMessage, error) {
		if !found || string(cur.Value) != string(got.Value) {
			t.Errorf("fn saw %s (found %v), want %s", cur.Value, found, got.Value)
		}
		return json.RawMessage(`{"other":true}`), boom
	}); !errors.Is(err, boom) {
		t.Errorf("ModifySetting with fn failing = %v, want its error", err)
	}
	if _, err := m.ModifySetting(ctx, admin, key, func(lifecycle.Setting, bool) (json.RawMessage, error) { return json.RawMessage(`{`), nil }); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("ModifySetting storing bad JSON = %v, want ErrInvalidInput", err)
	}
	s, err := m.ModifySetting(ctx, admin, key, func(lifecycle.Setting, bool) (json.RawMessage, error) { return json.RawMessage(`{"next":1}`), nil })
	if err != nil || string(s.Value) != `{"next":1}` {
		t.Fatalf("ModifySetting replacing = %s, %v", s.Value, err)
	}
	if got, err := m.Setting(ctx, key); err != nil || string(got.Value) != `{"next":1}` {
		t.Errorf("Setting after the replacement = %s, %v", got.Value, err)
	}
	checkEventCount(t, m, 2)
}
