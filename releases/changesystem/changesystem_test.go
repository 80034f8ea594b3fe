package changesystem_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dmlproject/dml/releases/changesystem"
	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// TestCheckRefusesWhatIsNotAnAnswer: a redirect is not followed, a body
// larger than the bound or not {"status"} is an error, and without a
// secret nothing is signed.
func TestCheckRefusesWhatIsNotAnAnswer(t *testing.T) {
	followed := false
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/approved", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/approved", func(w http.ResponseWriter, r *http.Request) {
		followed = true
		if r.Header.Get(events.HeaderSignature) != "" {
			t.Errorf("unsigned request carries %s", r.Header.Get(events.HeaderSignature))
		}
		_, _ = w.Write([]byte(`{"status":"approved"}`))
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"approved","message":"` + strings.Repeat("x", 70<<10) + `"}`))
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`<html>approved</html>`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cl := changesystem.New(0, nil)
	ctx := t.Context()
	check := lifecycle.ChangeCheck{ChangeRef: "CHG1", Release: "r1"}
	if _, err := cl.Check(ctx, lifecycle.ChangeSystemEndpoint{URL: srv.URL + "/redirect"}, check); err == nil || followed {
		t.Errorf("redirect: err %v, followed %v", err, followed)
	}
	for _, path := range []string{"/huge", "/html"} {
		if ans, err := cl.Check(ctx, lifecycle.ChangeSystemEndpoint{URL: srv.URL + path}, check); err == nil {
			t.Errorf("%s answered %+v, want an error", path, ans)
		}
	}
	ans, err := cl.Check(ctx, lifecycle.ChangeSystemEndpoint{URL: srv.URL + "/approved"}, check)
	if err != nil || ans.Status != lifecycle.ChangeApproved {
		t.Errorf("approved: %+v %v", ans, err)
	}
}
