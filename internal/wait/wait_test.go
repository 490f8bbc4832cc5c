package wait

import (
	"context"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !For(ctx, time.Millisecond) || !For(ctx, 0) {
		t.Fatal("a live context's wait did not pass")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	if For(ctx, time.Hour) {
		t.Fatal("a wait ended by its context passed")
	}
	if time.Since(start) > time.Minute {
		t.Fatal("the wait outlived its context")
	}
	if For(ctx, 0) || For(ctx, time.Millisecond) {
		t.Fatal("an ended context's wait passed")
	}
}
