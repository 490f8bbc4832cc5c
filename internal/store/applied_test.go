package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestApplied checks that waiters wake when their revision is applied, not
// before, that the revision never goes back, and that a waiter gives up
// with its context.
func TestApplied(t *testing.T) {
	t.Parallel()
	var a Applied
	if err := a.WaitFor(context.Background(), 0); err != nil {
		t.Fatalf("WaitFor(0) on a new tracker: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.WaitFor(context.Background(), 5) }()
	a.Advance(3)
	select {
	case err := <-done:
		t.Fatalf("WaitFor(5) returned %v after revision 3", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.Advance(7)
	if err := <-done; err != nil {
		t.Fatalf("WaitFor(5) after revision 7: %v", err)
	}
	a.Advance(4)
	if got := a.Revision(); got != 7 {
		t.Fatalf("Revision after Advance(7), Advance(4) = %d, want 7", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.WaitFor(ctx, 8); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitFor(8) with a cancelled context = %v, want context.Canceled", err)
	}
}
