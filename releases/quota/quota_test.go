package quota_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/dmlproject/dml/releases/quota"
)

// reader is a quota.Reader over fixed quotas and usage.
type reader struct {
	quotas []quota.Quota
	usage  map[string]quota.Usage
}

func (r reader) ListQuotas(context.Context) ([]quota.Quota, error) { return r.quotas, nil }
func (r reader) Usage(_ context.Context, prefix string) (quota.Usage, error) {
	return r.usage[prefix], nil
}

func TestCheck(t *testing.T) {
	r := reader{
		quotas: []quota.Quota{{Prefix: "payments/", MaxBytes: 100}, {Prefix: "payments/api", MaxArtifacts: 3}, {Prefix: "web/", MaxArtifacts: 1}},
		usage:  map[string]quota.Usage{"payments/": {Bytes: 90, Artifacts: 2}, "payments/api": {Bytes: 50, Artifacts: 3}},
	}
	for _, tc := range []struct {
		name             string
		bytes, artifacts int64
		want             *quota.ExceededError
	}{
		{"payments/worker", 10, 1, nil},
		{"payments/worker", 11, 1, &quota.ExceededError{Prefix: "payments/", Limit: "bytes", Max: 100, Used: 90, Requested: 11}},
		{"payments/worker", -1, 1, nil}, // undeclared: the stream is limited instead
		{"payments/api", 1, 1, &quota.ExceededError{Prefix: "payments/api", Limit: "artifacts", Max: 3, Used: 3, Requested: 1}},
		{"payments/api", 5, 0, nil}, // a blob is no version
		{"web/site", 1 << 40, 1, nil},
		{"other", 1 << 40, 100, nil},
	} {
		err := quota.Check(context.Background(), r, tc.name, tc.bytes, tc.artifacts)
		var got *quota.ExceededError
		errors.As(err, &got)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("Check(%s, %d, %d) = %v; want nil", tc.name, tc.bytes, tc.artifacts, err)
		case tc.want != nil && (got == nil || *got != *tc.want || !errors.Is(err, quota.ErrQuotaExceeded)):
			t.Errorf("Check(%s, %d, %d) = %v; want %+v", tc.name, tc.bytes, tc.artifacts, err, tc.want)
		}
	}
	left, by, err := quota.Budget(context.Background(), r, "payments/api")
	if err != nil || left != 10 || by == nil || by.Prefix != "payments/" {
		t.Errorf("Budget = %d, %+v, %v; want 10 by payments/", left, by, err)
	}
	if left, by, _ := quota.Budget(context.Background(), r, "web/x"); left != -1 || by != nil {
		t.Errorf("Budget without a byte quota = %d, %+v; want -1, nil", left, by)
	}
}

func TestLimitReader(t *testing.T) {
	exceeded := &quota.ExceededError{Prefix: "p", Limit: "bytes", Requested: -1}
	for _, tc := range []struct {
		size, budget int64
		fail         bool
	}{{10, 10, false}, {11, 10, true}, {0, 0, false}, {1, 0, true}, {1 << 20, 1<<20 - 1, true}} {
		got, err := io.ReadAll(quota.LimitReader(bytes.NewReader(make([]byte, tc.size)), tc.budget, exceeded))
		if tc.fail != errors.Is(err, quota.ErrQuotaExceeded) || (!tc.fail && int64(len(got)) != tc.size) || int64(len(got)) > tc.budget {
			t.Errorf("%d bytes, budget %d: read %d, %v; want fail=%v and never more than the budget", tc.size, tc.budget, len(got), err, tc.fail)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, q := range []quota.Quota{{Prefix: "", MaxBytes: 1}, {Prefix: "a b", MaxBytes: 1}, {Prefix: "p/", MaxBytes: -1}, {Prefix: "p/"}} {
		if err := q.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", q)
		}
	}
	if err := (quota.Quota{Prefix: "payments/", MaxArtifacts: 1}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}
