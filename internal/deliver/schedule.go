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

// Only the time a job's destination was failing counts: its circuit may
// close and open again while the job waits parked (a destination that
// fails now and then, or a long backlog drained at the destination's
// rate), and attempts that would have fallen while it answered would not
// have failed. So the schedule runs on the circuit's open time (openSpans):
// the job's next due time is put off by the time the circuit was closed
// since then (shifted). Where this node does not know (before it started,
// or spans it no longer keeps), the circuit counts as closed: a job gets
// more attempts, never fewer.

// span is a time a destination's circuit was open, as this node saw it;
// to is zero while it is open.
type span struct{ from, to time.Time }

// maxSpans bounds the open spans kept per destination; older ones are
// forgotten.
const maxSpans = 64

// noteSpanLocked records a change of dest's circuit: h is its record, nil
// once it closed, at now. w.mu is held.
func (w *Worker) noteSpanLocked(dest string, h *store.Health, now time.Time) {
	spans := w.spans[dest]
	last := len(spans) - 1
	if h == nil {
		if last >= 0 && spans[last].to.IsZero() {
			spans[last].to = now
		}
		return
	}
	if last >= 0 && spans[last].from.Equal(h.Since) {
		spans[last].to = time.Time{} // the same opening, seen again
		return
	}
	if last >= 0 && spans[last].to.IsZero() {
		spans[last].to = h.Since
	}
	spans = append(spans, span{from: h.Since})
	if len(spans) > maxSpans {
		spans = spans[len(spans)-maxSpans:]
	}
	w.spans[dest] = spans
}

// openTime returns how long dest's circuit was open between from and to.
func (w *Worker) openTime(dest string, from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d time.Duration
	for _, s := range w.spans[dest] {
		end := s.to
		if end.IsZero() || end.After(to) {
			end = to
		}
		start := s.from
		if start.Before(from) {
			start = from
		}
		if end.After(start) {
			d += end.Sub(start)
		}
	}
	return d
}

// shifted returns p with its next due time put off by the time its
// destination's circuit was closed since then, up to now.
func (w *Worker) shifted(p store.Parked, dest string, now time.Time) store.Parked {
	if now.After(p.NextDue) {
		closed := now.Sub(p.NextDue) - w.openTime(dest, p.NextDue, now)
		p.NextDue = p.NextDue.Add(max(closed, 0))
	}
	return p
}

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
// that fell due while it was parked (one due now is the one about to be
// made); at most MaxRetries, so that the attempt made next is one its
// policy allows.
func (w *Worker) madeBy(p store.Parked, t Target, now time.Time) int {
	n, due := p.Attempt, p.NextDue
	for due.Before(now) && n < t.MaxRetries {
		due = due.Add(w.meanBackoff(n))
		n++
	}
	return n
}

// meanBackoff is the mean wait before retry n (see backoff).
func (w *Worker) meanBackoff(n int) time.Duration {
	return w.ceiling(n)/2 + 1
}
