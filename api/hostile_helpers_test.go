package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/dmlproject/dml/internal/testserver"
	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/store"
)

// doJSON sends req and decodes the error body, if any.
func doJSON(t *testing.T, req *http.Request) (int, errorView) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var ev errorView
	if resp.StatusCode >= 400 && len(data) > 0 {
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("%s %s: %d with a body that is not the error shape: %q", req.Method, req.URL, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, ev
}

// observer looks behind the API at what a request may have changed.
type observer struct{ svc *releases.DML }

// observed is the size of the audit log and the number of objects in the
// blob backend (blobs, staged uploads and chunks alike).
type observed struct {
	AuditRecords int64
	Objects      int
}

func (o observer) capture(t *testing.T) observed {
	t.Helper()
	ctx := context.Background()
	admin, err := o.svc.Access.Authenticate(ctx, testserver.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	_, cp, err := o.svc.Audit.Checkpoint(ctx, admin)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	n := 0
	if err := o.svc.Blobs.Store().Backend().List(ctx, "", func(store.Info) error { n++; return nil }); err != nil {
		t.Fatalf("listing the backend: %v", err)
	}
	return observed{AuditRecords: cp.Size, Objects: n}
}
