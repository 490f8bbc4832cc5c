package store

import (
	"context"
	"sync"
	"sync/atomic"
)

// Applied is the newest configuration revision a watcher has applied, for
// writers that wait until their own change is visible on this node (so a
// client reads its own writes) and for caches keyed by revision. A watcher
// calls Advance after the change is in place, so whoever sees the revision
// also sees the change. The zero value is ready to use.
type Applied struct {
	rev     atomic.Uint64
	mu      sync.Mutex
	changed chan struct{} // closed and dropped when rev advances
}

// Advance records that rev has been applied.
func (a *Applied) Advance(rev uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rev <= a.rev.Load() {
		return
	}
	a.rev.Store(rev)
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// Revision is the newest revision applied.
func (a *Applied) Revision() uint64 { return a.rev.Load() }

// WaitFor waits until revision rev has been applied, or ctx ends.
func (a *Applied) WaitFor(ctx context.Context, rev uint64) error {
	for {
		a.mu.Lock()
		if a.rev.Load() >= rev {
			a.mu.Unlock()
			return nil
		}
		if a.changed == nil {
			a.changed = make(chan struct{})
		}
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
