package deliver

import (
	"testing"
	"time"

	"bridgeport/internal/store"
)

// TestParkedSchedule follows a parked job's attempts on the backoff's mean
// schedule (base 1 s: waits of 0.5, 1, 2, 4 s on average): it runs out of
// retries, or of age, where retrying every attempt would have.
func TestParkedSchedule(t *testing.T) {
	w := NewWorker(WorkerConfig{BaseDelay: time.Second, MaxDelay: time.Minute})
	t0 := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		name       string
		attempt    int
		maxRetries int
		maxAge     time.Duration
		deadline   time.Duration // after t0
		exhausted  string
		retries    int
		at         time.Duration // madeBy at t0+at
		made       int
		age        time.Duration // the event's age at t0
	}{
		// One attempt made, the second due at t0: due at t0, t0+1s and
		// t0+3s; the one at t0+3s is retry 3, the last.
		{"attempts", 1, 3, 24 * time.Hour, 3 * time.Second, ExhaustedAttempts, 3, 1200 * time.Millisecond, 3, 0},
		// None made: due at t0, t0+0.5s, t0+1.5s; the next would come at
		// t0+3.5s, past the event's age of 2 s.
		{"age", 0, 185, 2 * time.Second, 1500 * time.Millisecond, ExhaustedAge, 2, 0, 0, 0},
		// Its next attempt comes past its age: it ends there.
		{"too old", 0, 185, time.Second, 0, ExhaustedAge, 0, 0, 0, 2 * time.Second},
		// Made by just after t0: the one due at t0.
		{"just after", 0, 185, time.Second, 500 * time.Millisecond, ExhaustedAge, 1, time.Millisecond, 1, 0},
		// An hour of waits of 0.5 s doubling up to 30 s (the mean of the
		// one-minute ceiling) makes 125 attempts.
		{"an hour", 0, 185, 24 * time.Hour, 0, "", 0, time.Hour, 125, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := store.Parked{Job: store.Job{Ingested: t0.Add(-tc.age), Attempt: tc.attempt}, NextDue: t0}
			tg := Target{MaxRetries: tc.maxRetries, MaxAge: tc.maxAge}
			pl := w.plan(p, tg)
			if got := pl.deadline.Sub(t0); tc.exhausted != "" && (got.Round(time.Millisecond) != tc.deadline || pl.exhausted != tc.exhausted || pl.retries != tc.retries) {
				t.Errorf("plan = %v after t0, %s, %d retries; want %v, %s, %d", got, pl.exhausted, pl.retries, tc.deadline, tc.exhausted, tc.retries)
			}
			if got := w.madeBy(p, tg, t0.Add(tc.at)); got != tc.made {
				t.Errorf("madeBy(t0+%v) = %d, want %d", tc.at, got, tc.made)
			}
		})
	}
}

// TestScheduleCountsOpenTime: a parked job's missed attempts are counted
// only over the time its destination's circuit was open. A circuit open
// for 2 s, closed for 10 s, then open again for 1 s, counts 3 s of the
// 13 since the job's attempt was due; one open until now counts its whole
// time; where the node saw nothing, nothing counts.
func TestScheduleCountsOpenTime(t *testing.T) {
	w := NewWorker(WorkerConfig{BaseDelay: time.Second, MaxDelay: time.Second})
	t0 := time.Unix(1_000_000, 0)
	const dest = "d"
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	open := func(since int) *store.Health { return &store.Health{Destination: dest, Since: at(since)} }
	w.mu.Lock()
	w.noteSpanLocked(dest, open(0), at(0))
	w.noteSpanLocked(dest, nil, at(2))
	w.noteSpanLocked(dest, open(12), at(12))
	w.noteSpanLocked(dest, open(12), at(12)) // seen again after a watch restart
	w.noteSpanLocked(dest, nil, at(13))
	w.mu.Unlock()
	if got := w.openTime(dest, at(0), at(20)); got != 3*time.Second {
		t.Errorf("open time = %v, want 3s", got)
	}
	if got := w.openTime(dest, at(1), at(12).Add(500*time.Millisecond)); got != 1500*time.Millisecond {
		t.Errorf("open time from 1 s to 12.5 s = %v, want 1.5s", got)
	}
	p := store.Parked{Job: store.Job{Ingested: t0, Attempt: 1}, NextDue: t0}
	tg := Target{MaxRetries: 185, MaxAge: 24 * time.Hour}
	// Waits of 0.5 s (the mean of a one-second ceiling): attempts due at
	// 0, 0.5, 1, 1.5, 2 and 2.5 s of open time (the next just after 3 s).
	if got := w.madeBy(w.shifted(p, dest, at(20)), tg, at(20)); got != 1+6 {
		t.Errorf("attempts made by 20 s = %d, want 7", got)
	}
	// Open again, from 30 s on: by 40 s, 13 s of open time.
	w.mu.Lock()
	w.noteSpanLocked(dest, open(30), at(30))
	w.mu.Unlock()
	if got := w.openTime(dest, at(0), at(40)); got != 13*time.Second {
		t.Errorf("open time = %v, want 13s", got)
	}
	if got := w.madeBy(w.shifted(p, dest, at(40)), tg, at(40)); got != 1+26 {
		t.Errorf("attempts made by 40 s = %d, want 27", got)
	}
	// A destination the node saw nothing of: no attempt counted (the one
	// due now is the one about to be made).
	if got := w.madeBy(w.shifted(p, "other", at(40)), tg, at(40)); got != 1 {
		t.Errorf("attempts made for an unknown destination = %d, want 1", got)
	}
}
