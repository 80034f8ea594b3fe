package lifecycle_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/changesystem"
	"github.com/dmlproject/dml/releases/errdef"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// stubChangeSystem is an external change system on loopback: it checks
// each request's signature and answers as the test sets (answer).
type stubChangeSystem struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	// stop ends the slow answers when the test ends.
	stop chan struct{}

	mu       sync.Mutex
	answer   string // approved, pending, rejected, 500, slow
	requests []map[string]any
}

func newStubChangeSystem(t *testing.T, secret string) *stubChangeSystem {
	s := &stubChangeSystem{t: t, secret: secret, answer: "approved", stop: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() { close(s.stop); s.srv.Close() })
	return s
}

func (s *stubChangeSystem) set(answer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

func (s *stubChangeSystem) calls() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.requests...)
}

func (s *stubChangeSystem) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("change system: reading the request: %v", err)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		s.t.Errorf("change system: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if err := verifySignature(s.secret, r.Header.Get("X-DML-Signature"), body); err != nil {
		s.t.Errorf("change system: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		s.t.Errorf("change system: body %s: %v", body, err)
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	answer := s.answer
	s.mu.Unlock()
	switch answer {
	case "500":
		http.Error(w, "database down", http.StatusInternalServerError)
	case "slow":
		select { // answers after the client gave up
		case <-r.Context().Done():
		case <-s.stop:
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": answer, "message": "CAB says " + answer})
	}
}

// verifySignature checks header "t=UNIX,v1=HEX" as a receiver would:
// HEX is hex(HMAC-SHA256(secret, UNIX + "." + body)).
func verifySignature(secret, header string, body []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || sig == "" {
		return errors.New("signature header " + strconv.Quote(header) + " is not t=UNIX,v1=HEX")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return errors.New("signature does not verify")
	}
	return nil
}

// TestChangeSystemConfirmsThePlanGate: with a change system configured,
// the approval that completes the plan gate's quorum passes it only when
// the change system answers "approved"; pending, rejected, an error or no
// answer in time refuse that approval and record nothing. Approvals that
// do not complete the quorum do not ask.
func TestChangeSystemConfirmsThePlanGate(t *testing.T) {
	stub := newStubChangeSystem(t, "s3cret-for-the-itsm")
	e, _ := newClockedEnv(t, func(c *releases.Config) {
		// Short, so that the slow answer fails the test quickly; the
		// stub never answers in time whatever the bound.
		c.ChangeSystem = changesystem.New(300*time.Millisecond, nil)
	})
	for _, bad := range []string{"http://change.example.com/api", "ftp://127.0.0.1/x", "https://user:pw@itsm.example.com/", "not a url"} {
		_, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{ChangeSystem: &lifecycle.ChangeSystemEndpoint{URL: bad}})
		wantErr(t, "change system at "+bad, err, errdef.ErrInvalidInput)
	}
	if _, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{
		ChangeSystem: &lifecycle.ChangeSystemEndpoint{URL: stub.srv.URL + "/dml/check", Secret: stub.secret}}); err != nil {
		t.Fatal(err)
	}

	req := createRequest(e.nextName(), map[string]int{lifecycle.GatePlan: 2})
	req.Plan.Window = &lifecycle.Window{Start: windowStart, End: windowEnd}
	r, err := e.svc.Releases.CreateRelease(e.ctx, e.rm, req)
	if err != nil {
		t.Fatal(err)
	}
	e.approve(e.cab[0], r.Name, lifecycle.GatePlan)
	if n := len(stub.calls()); n != 0 {
		t.Fatalf("the first of two approvals asked the change system %d times", n)
	}

	for _, answer := range []string{"pending", "rejected", "500", "slow"} {
		t.Run(answer, func(t *testing.T) {
			e.use(t)
			stub.set(answer)
			before := e.get(r.Name)
			events := len(e.releaseEvents(r.Name))
			calls := len(stub.calls())
			_, err := e.decide(e.cab[1], r.Name, lifecycle.GatePlan)
			var ne *lifecycle.ChangeNotApprovedError
			if !errors.Is(err, lifecycle.ErrChangeNotApproved) || !errors.As(err, &ne) {
				t.Fatalf("approval when the change system answers %s: %v, want ErrChangeNotApproved", answer, err)
			}
			want := map[string]string{"pending": "pending", "rejected": "rejected", "500": "error", "slow": "error"}[answer]
			if ne.Status != want || ne.ChangeRef != "CHG-1001" {
				t.Errorf("refusal %+v, want status %s for CHG-1001", ne, want)
			}
			if answer == "500" && !strings.Contains(ne.Message, "500") {
				t.Errorf("message %q does not give the change system's status", ne.Message)
			}
			if answer == "pending" && ne.Message != "CAB says pending" {
				t.Errorf("message %q, want the change system's", ne.Message)
			}
			after := e.get(r.Name)
			if after.Revision != before.Revision || after.State != lifecycle.ReleasePlanning || len(e.releaseEvents(r.Name)) != events {
				t.Errorf("a refused approval changed the release: revision %d → %d, state %s", before.Revision, after.Revision, after.State)
			}
			if n := len(stub.calls()); n != calls+1 {
				t.Errorf("the change system was asked %d times, want once", n-calls)
			}
		})
	}

	stub.set("approved")
	r = e.approve(e.cab[1], r.Name, lifecycle.GatePlan)
	if r.State != lifecycle.ReleaseBuilding {
		t.Fatalf("after the change system approved: %s", r.State)
	}
	calls := stub.calls()
	got := calls[len(calls)-1]
	window, _ := got["window"].(map[string]any)
	if got["changeRef"] != "CHG-1001" || got["release"] != r.Name || got["planDigest"] != r.PlanDigest.String() || got["risk"] != "low" ||
		window["start"] != windowStart.Format(time.RFC3339) || window["end"] != windowEnd.Format(time.RFC3339) {
		t.Errorf("the change system was asked %v", got)
	}
	evs := e.releaseEvents(r.Name)
	var det struct {
		Authorized   bool `json:"authorized"`
		ChangeSystem struct {
			Status, Message, URL string
		} `json:"changeSystem"`
	}
	if err := json.Unmarshal(evs[len(evs)-1].Details, &det); err != nil {
		t.Fatal(err)
	}
	if !det.Authorized || det.ChangeSystem.Status != "approved" || det.ChangeSystem.Message != "CAB says approved" || det.ChangeSystem.URL != stub.srv.URL+"/dml/check" {
		t.Errorf("gate-passing event %s lacks the change system's answer", evs[len(evs)-1].Details)
	}

	// Removing the change system lets plan gates pass without it.
	if _, _, err := e.svc.Releases.SetChangePolicy(e.ctx, e.admin, lifecycle.ChangePolicyUpdate{ChangeSystem: &lifecycle.ChangeSystemEndpoint{}}); err != nil {
		t.Fatal(err)
	}
	stub.set("rejected")
	r2 := e.windowed(&lifecycle.Window{Start: windowStart, End: windowEnd})
	if r2.State != lifecycle.ReleaseDeploying {
		t.Errorf("without a change system: %s", r2.State)
	}
}
