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
		{"age", 0, 185, 2 * time.Second, 1500 * time.Millisecond, ExhaustedAge, 2, 0, 1, 0},
		// Its next attempt comes past its age: it ends there.
		{"too old", 0, 185, time.Second, 0, ExhaustedAge, 0, 0, 1, 2 * time.Second},
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
