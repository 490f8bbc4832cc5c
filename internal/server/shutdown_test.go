package server

import (
	"testing"
	"time"

	"bridgeport/internal/config"
)

// TestShutdownFinishesDeliveries: a delivery in flight when the server
// stops finishes within the grace period, is acknowledged, and is not sent
// again after a restart.
func TestShutdownFinishesDeliveries(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil)
	d.sink.setDelay(1500 * time.Millisecond)
	id := d.putID()
	d.sink.wait(t, 1) // the request is in flight
	start := time.Now()
	d.stop()
	if took := time.Since(start); took < time.Second {
		t.Errorf("stop took %v: it did not wait for the delivery in flight", took)
	}
	d.sink.setDelay(0)
	d.restartDelivery()
	if a := d.finalAttempt(id); a.Outcome != "DELIVERED" {
		t.Errorf("final attempt %+v", a)
	}
	time.Sleep(2 * time.Second)
	if n := len(d.sink.received()); n != 1 {
		t.Errorf("%d requests, want 1: the finished delivery was sent again", n)
	}
}

// TestShutdownHandsBackDeliveries: a delivery still in flight when the
// grace period ends is cancelled and handed back; after a restart it is
// delivered: at least once, never lost.
func TestShutdownHandsBackDeliveries(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil, func(c *config.Config) { c.Quotas.ShutdownGraceTime = 300 * time.Millisecond })
	d.sink.setDelay(time.Minute) // no answer before the caller hangs up
	id := d.putID()
	d.sink.wait(t, 1)
	d.stop()
	d.sink.setDelay(0)
	d.restartDelivery()
	got := d.sink.wait(t, 2)
	// Handed back, not timed out: a cancelled attempt is not an attempt,
	// so the delivery after the restart is the first attempt (had stop
	// waited for the invocation's own 5-second timeout, the first would be
	// a TIMEOUT and the delivery the second).
	if a := d.finalAttempt(id); a.Outcome != "DELIVERED" || a.Attempt != 1 {
		t.Errorf("final attempt %+v", a)
	}
	d.sink.mu.Lock()
	abandoned := d.sink.abandoned
	d.sink.mu.Unlock()
	if len(got) < 2 || abandoned != 1 {
		t.Errorf("%d requests, %d abandoned by the caller; want the first abandoned and a second", len(got), abandoned)
	}
}
