// Package wait has the one pause the rest of bridgeport shares: a sleep
// that a context can end.
package wait

import (
	"context"
	"time"
)

// For waits for d, or until ctx ends. It reports whether d passed: false
// when ctx ended first; for d <= 0, whether ctx is still live.
func For(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
