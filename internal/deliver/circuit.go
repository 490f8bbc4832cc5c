package deliver

import (
	"context"
	"fmt"
	"time"

	"bridgeport/internal/store"
)

// Circuit breaking. A destination whose attempts keep failing in a way that
// is retried (no connection, no answer within the timeout, 5xx, 429), with
// none ending well for a second, has its circuit opened for the whole
// cluster (a record in the store): from then on its jobs are parked
// (store.Park) instead of tried, so a dead destination costs a write per
// event rather than an attempt, a delay and a worker's time for every
// retry of every event; one node at a time probes it with one of its jobs,
// at growing intervals; the first attempt through it that succeeds closes
// the circuit, and its parked jobs drain (keeper.go).

// circuitThreshold is how many attempts in a row, on one node, must fail
// for a destination's circuit to open, with none ending well for
// circuitQuiet.
const circuitThreshold = 5

// circuitQuiet: a destination with a call that ended well this recently
// keeps its circuit closed.
const circuitQuiet = time.Second

// maxProbeEvery bounds the wait between two probes of a failing
// destination.
const maxProbeEvery = time.Minute

// probeEvery is the wait before probe n+1 of a failing destination: the
// backoff's steps, up to a minute.
func (w *Worker) probeEvery(n int) time.Duration {
	d := w.cfg.BaseDelay
	for i := 0; i < n && d < maxProbeEvery; i++ {
		d *= 2
	}
	return min(d, maxProbeEvery, max(w.cfg.MaxDelay, w.cfg.BaseDelay))
}

// circuit returns a destination's health record when its circuit is open,
// and a channel closed at the next change of it.
func (w *Worker) circuit(dest string) (h *store.Health, changed <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open[dest], w.changedLocked(dest)
}

func (w *Worker) changedLocked(dest string) chan struct{} {
	c := w.changed[dest]
	if c == nil {
		c = make(chan struct{})
		w.changed[dest] = c
	}
	return c
}

// watchHealth keeps this node's view of the open circuits current. A
// watch started again (after a reconnection) starts from scratch: the
// records it hands over first are all there is.
func (w *Worker) watchHealth(ctx context.Context) error {
	w.mu.Lock()
	for dest := range w.open {
		close(w.changedLocked(dest))
		delete(w.changed, dest)
		// Closed as far as this node knows, until the watch hands its
		// record over again (the same opening, taken up again).
		w.noteSpanLocked(dest, nil, w.cfg.Now())
	}
	clear(w.open)
	w.mu.Unlock()
	return w.cfg.Store.WatchHealth(ctx, func(dest string, h *store.Health) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.noteSpanLocked(dest, h, w.cfg.Now())
		if h == nil {
			delete(w.open, dest)
		} else {
			w.open[dest] = h
		}
		// A circuit that opened or closed counts its failures afresh: a
		// node's old run of failures must not reopen it at once.
		delete(w.fails, dest)
		close(w.changedLocked(dest))
		delete(w.changed, dest)
	})
}

// failsInARow returns the failures in a row of a destination on this node.
func (w *Worker) failsInARow(dest string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fails[dest]
}

// noteAttempt counts an attempt's outcome against its destination: a
// success closes its circuit, and failures that are retried, circuitThreshold
// of them in a row, open it.
func (w *Worker) noteAttempt(ctx context.Context, dest string, res Result) {
	w.mu.Lock()
	open := w.open[dest] != nil
	if !res.Retry {
		delete(w.fails, dest) // it answers: delivered, or refused for good
		if res.OK() || res.Status != 0 {
			w.settled[dest] = time.Now()
		}
		w.mu.Unlock()
		// Any answer that is not retried (2xx, or a 4xx that ends the
		// invocation) shows the endpoint is there: its parked jobs run, and
		// end as the endpoint says rather than by their retry policy.
		if open && (res.OK() || res.Status != 0) {
			if err := w.cfg.Store.CloseCircuit(ctx, dest); err != nil {
				w.log.Warn("close circuit", "destination", dest, "error", err)
			} else {
				w.log.Info("destination answers again; its parked events are delivered", "destination", dest)
			}
		}
		return
	}
	w.fails[dest]++
	n := w.fails[dest]
	// A destination that fails now and then, at many calls a second, has
	// runs of failures too: it keeps its circuit closed while any call
	// ends well, and its failed events are retried as EventBridge retries
	// them.
	quiet := time.Since(w.settled[dest]) >= circuitQuiet
	w.mu.Unlock()
	if open {
		// A failed probe: the parked jobs' attempts meanwhile fail too.
		if err := w.cfg.Store.NoteFailure(ctx, dest, w.cfg.Now(), res.Code, res.Message); err != nil {
			w.log.Warn("note failure", "destination", dest, "error", err)
		}
		return
	}
	if n >= circuitThreshold && quiet {
		w.openCircuit(ctx, dest, res)
	}
}

// openCircuit opens a destination's circuit, failing as res says, and
// returns its record.
func (w *Worker) openCircuit(ctx context.Context, dest string, res Result) store.Health {
	now := w.cfg.Now()
	h := store.Health{Destination: dest, Since: now, Code: res.Code, Message: res.Message, LastFailed: now, NextProbe: now.Add(w.probeEvery(0))}
	if err := w.cfg.Store.OpenCircuit(ctx, h); err != nil {
		w.log.Warn("open circuit", "destination", dest, "error", err)
		return h
	}
	w.log.Warn("destination failing: its events are parked until it answers again", "destination", dest, "code", res.Code, "error", res.Message)
	return h
}

// parkOnArrival parks a job whose destination's circuit is open, without
// an attempt: its next attempt was due now.
func (w *Worker) parkOnArrival(ctx context.Context, j store.Job, t Target, h *store.Health) error {
	return w.park(ctx, j, t, w.cfg.Now(), Result{Code: h.Code, Message: h.Message}, false)
}

// park stores a job until its destination answers again; due is when its
// next attempt is due, res the error of the last one (attempted says
// whether this job made it).
func (w *Worker) park(ctx context.Context, j store.Job, t Target, due time.Time, res Result, attempted bool) error {
	if err := w.cfg.Store.Park(ctx, []store.Parked{{Job: j, NextDue: due, ParkedAt: w.cfg.Now(), LastCode: res.Code, LastMessage: res.Message}}); err != nil {
		return err
	}
	w.nudgeKeepers(j)
	w.cfg.Metrics.Parked(j.RuleArn)
	if !attempted {
		w.logAttempt(j, t, Result{Message: "not sent: the destination is failing (" + res.Code + "); parked until it answers again"}, store.OutcomeParked, nil)
	}
	return nil
}

// parkBusy parks a job whose destination has all the calls in flight it
// may, none of them ended lately: its target's keepers send it when a call
// is free. Its next attempt is due after the backoff step it is at, so
// that, sent before then, it is counted as the attempt it is.
func (w *Worker) parkBusy(ctx context.Context, j store.Job, t Target, calls int) error {
	now := w.cfg.Now()
	if err := w.cfg.Store.Park(ctx, []store.Parked{{Job: j, NextDue: now.Add(w.meanBackoff(j.Attempt)), ParkedAt: now}}); err != nil {
		return err
	}
	w.nudgeKeepers(j)
	w.cfg.Metrics.Parked(j.RuleArn)
	w.logAttempt(j, t, Result{Message: fmt.Sprintf("not sent yet: the destination has %d calls in flight and none ended lately; parked until one does", calls)}, store.OutcomeParked, nil)
	return nil
}

// ParkFailing parks, at once, the jobs among jobs whose API destination's
// circuit is open (their first attempt due now, failed as their
// destination fails), and returns the others: the router queues those. So
// a dead destination's events never enter the shared jobs stream, where
// healthy destinations' jobs would wait behind them.
func (w *Worker) ParkFailing(ctx context.Context, jobs []store.Job) ([]store.Job, error) {
	var park []store.Parked
	var parkedTargets []Target
	rest := jobs[:0:0]
	now := w.cfg.Now()
	for _, j := range jobs {
		t, ok := w.cfg.Config.Target(j.RuleArn, j.TargetID)
		var h *store.Health
		if ok && t.Destination != nil {
			h, _ = w.circuit(t.Destination.Arn)
		}
		if h == nil {
			rest = append(rest, j)
			continue
		}
		park = append(park, store.Parked{Job: j, NextDue: now, ParkedAt: now, LastCode: h.Code, LastMessage: h.Message})
		parkedTargets = append(parkedTargets, t)
	}
	if len(park) == 0 {
		return jobs, nil
	}
	if err := w.cfg.Store.Park(ctx, park); err != nil {
		return nil, err
	}
	for i, p := range park {
		w.nudgeKeepers(p.Job)
		w.cfg.Metrics.Parked(p.RuleArn)
		w.logAttempt(p.Job, parkedTargets[i], Result{Message: "not sent: the destination is failing (" + p.LastCode + "); parked until it answers again"}, store.OutcomeParked, nil)
	}
	return rest, nil
}
