package deliver

import (
	"time"

	"bridgeport/internal/store"
)

// While a job is parked its destination is failing, so each attempt its
// retry policy would have made in that time would have failed. Those
// attempts are not made; they are counted, on the schedule the backoff
// gives on average (half its ceiling: the mean of full jitter), so that a
// parked job's attempts and age run out as they would have: it goes to its
// dead-letter queue at the same point, with MaximumRetryAttempts or
// MaximumEventAgeInSeconds and the attempts it would have made.

// plan is what becomes of a parked job if every attempt it would make
// fails: when its retry policy runs out, which condition ends it, and the
// attempts it will have made (RETRY_ATTEMPTS counts the retries, one less
// than the attempts).
type plan struct {
	deadline  time.Time
	exhausted string
	retries   int
}

// plan follows a parked job's schedule from its next attempt to the end of
// its retry policy, as worker.retry would, with the mean backoff.
func (w *Worker) plan(p store.Parked, t Target) plan {
	n, due := p.Attempt, p.NextDue
	for {
		if t.MaxAge > 0 && due.Sub(p.Ingested) > t.MaxAge {
			return plan{deadline: due, exhausted: ExhaustedAge, retries: n}
		}
		// Attempt n+1, at due, fails.
		if n >= t.MaxRetries {
			return plan{deadline: due, exhausted: ExhaustedAttempts, retries: n}
		}
		delay := w.meanBackoff(n)
		if t.MaxAge > 0 && due.Add(delay).Sub(p.Ingested) > t.MaxAge {
			return plan{deadline: due, exhausted: ExhaustedAge, retries: n}
		}
		n++
		due = due.Add(delay)
	}
}

// madeBy returns the attempts a parked job has made by now, counting those
// that fell due while it was parked; at most MaxRetries, so that the
// attempt made next is one its policy allows.
func (w *Worker) madeBy(p store.Parked, t Target, now time.Time) int {
	n, due := p.Attempt, p.NextDue
	for !due.After(now) && n < t.MaxRetries {
		due = due.Add(w.meanBackoff(n))
		n++
	}
	return n
}

// meanBackoff is the mean wait before retry n (see backoff).
func (w *Worker) meanBackoff(n int) time.Duration {
	return w.ceiling(n)/2 + 1
}
