package events

import "sync"

// notifier wakes waiters when something was written locally: Changed's
// channel is closed by the next Notify. Writes by other replicas are not
// seen here; waiters also re-check the database at an interval.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// Notify wakes every current waiter.
func (n *notifier) Notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// Changed is closed by the next Notify.
func (n *notifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}
