package changesystem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dmlproject/dml/releases/events"
	"github.com/dmlproject/dml/releases/lifecycle"
)

// DefaultTimeout bounds one question to the change system, answer
// included: the approver waits for it.
const DefaultTimeout = 10 * time.Second

// maxAnswer bounds the answer read: {"status","message"} is small.
const maxAnswer = 64 << 10

// Client asks change systems over HTTP.
type Client struct {
	http *http.Client
	now  func() time.Time
}

var _ lifecycle.ChangeSystem = (*Client)(nil)

// New returns a client whose questions take at most timeout (0:
// DefaultTimeout); now nil is the wall clock (it dates signatures).
func New(timeout time.Duration, now func() time.Time) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if now == nil {
		now = time.Now
	}
	return &Client{now: now, http: &http.Client{
		Timeout: timeout,
		// A redirect is not an answer: following it would send the
		// change, signed, wherever the first server points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Check implements lifecycle.ChangeSystem: it POSTs c to at.URL and
// returns the answer of a 200. Any other status, a body that is not the
// answer, a timeout or a connection error is an error.
func (cl *Client) Check(ctx context.Context, at lifecycle.ChangeSystemEndpoint, c lifecycle.ChangeCheck) (lifecycle.ChangeAnswer, error) {
	if c.Window != nil {
		w := lifecycle.Window{Start: c.Window.Start.UTC(), End: c.Window.End.UTC()}
		c.Window = &w
	}
	body, err := json.Marshal(c)
	if err != nil {
		return lifecycle.ChangeAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, at.URL, bytes.NewReader(body))
	if err != nil {
		return lifecycle.ChangeAnswer{}, fmt.Errorf("change system request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if at.Secret != "" {
		req.Header.Set(events.HeaderSignature, events.Sign([]byte(at.Secret), body, cl.now()))
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return lifecycle.ChangeAnswer{}, fmt.Errorf("asking the change system: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return lifecycle.ChangeAnswer{}, fmt.Errorf("reading the change system's answer: %w", err)
	}
	if len(b) > maxAnswer {
		return lifecycle.ChangeAnswer{}, fmt.Errorf("the change system's answer is larger than %d bytes", maxAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		return lifecycle.ChangeAnswer{}, fmt.Errorf("the change system answered HTTP %d: %s", resp.StatusCode, snippet(b))
	}
	var ans lifecycle.ChangeAnswer
	if err := json.Unmarshal(b, &ans); err != nil || ans.Status == "" {
		return lifecycle.ChangeAnswer{}, errors.New("the change system's answer is not {\"status\": ...}: " + snippet(b))
	}
	return ans, nil
}

// snippet is the start of an answer, for an error message.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "…"
	}
	return strconv.Quote(string(b))
}
