package deliver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"bridgeport/internal/store"
	"bridgeport/internal/wait"
)

// Keepers: every node keeps the parked jobs of every target that has some
// (store.KeepParked; the nodes share each target's jobs). A keeper takes
// them oldest first, and for each:
//
//   - when its retry policy has run out (see plan), sends it to its
//     dead-letter queue as worker.retry would have;
//   - while its destination's circuit is open, waits; when a probe is due,
//     the first keeper to claim it tries its job for real;
//   - once the circuit is closed, runs it at once, waiting for the
//     destination's rate limit rather than being turned away, with the
//     attempts it would have made in the meantime counted.
//
// So a backlog drains oldest first at the destination's rate, through the
// keepers' own goroutines: the shared workers, and other destinations'
// jobs, are not held by it.
//
// A keeper holds one job while its jobs only wait (it starts that way, and
// returns to it when a job waits or makes a probe), and up to keeperInHand
// once one has been worked on otherwise (drained or dead-lettered): a job
// about to wait while another already does is handed back. A hundred dead
// destinations then cost a hundred waiting jobs, not sixteen hundred
// goroutines and timers each waking every second, which measurably slowed
// the healthy traffic (docs/BENCHMARKS.md, "Failing targets at scale").
const keeperInHand = 16

// A hand is one node's hold on one target's parked jobs.
type hand struct {
	calm    atomic.Bool   // its jobs only wait: hold one
	waiting atomic.Int32  // jobs in hand waiting for their destination
	more    chan struct{} // no longer calm: take more
}

func newHand() *hand {
	h := &hand{more: make(chan struct{}, 1)}
	h.calm.Store(true)
	return h
}

// size is how many jobs the hand may hold.
func (h *hand) size() int {
	if h.calm.Load() {
		return 1
	}
	return keeperInHand
}

// wait reports whether a job may wait in hand: false when another already
// does, and the job should be handed back. Either way its jobs only wait.
func (h *hand) wait() bool {
	h.calm.Store(true)
	if h.waiting.Add(1) > 1 {
		h.waiting.Add(-1)
		return false
	}
	return true
}

// done ends a wait that wait allowed.
func (h *hand) done() { h.waiting.Add(-1) }

// busy says a job was worked on rather than kept waiting: take more.
func (h *hand) busy() {
	if h.calm.CompareAndSwap(true, false) {
		select {
		case h.more <- struct{}{}:
		default:
		}
	}
}

// keepers starts a keeper for each target with parked jobs and stops those
// whose targets have had none for a while, until ctx ends.
func (w *Worker) keepers(ctx, workCtx context.Context) error {
	type keeper struct {
		cancel context.CancelFunc
		empty  int // polls since its target last had parked jobs
	}
	running := map[string]*keeper{}
	var wg sync.WaitGroup
	defer func() {
		for key, k := range running {
			k.cancel()
			w.keeping.Delete(key)
		}
		wg.Wait()
	}()
	tick := time.NewTicker(w.cfg.KeeperPoll)
	defer tick.Stop()
	ticked := true // this look is a poll, not a nudge: idle keepers count it
	for {
		counts, err := w.cfg.Store.ParkedCounts(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("parked jobs", "error", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				ticked = true
			}
			continue
		}
		for key, n := range counts {
			if n == 0 || running[key] != nil {
				continue
			}
			kctx, cancel := context.WithCancel(ctx)
			running[key] = &keeper{cancel: cancel}
			w.keeping.Store(key, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := newHand()
				keep := func(ctx context.Context, p store.Parked) error { return w.keepParked(ctx, workCtx, h, p) }
				for kctx.Err() == nil {
					if err := w.cfg.Store.KeepParked(kctx, key, keeperInHand, h.size, h.more, keep); err != nil && kctx.Err() == nil {
						w.log.Warn("keeper stopped; restarting", "target_key", key, "error", err)
						wait.For(kctx, time.Second)
					}
				}
			}()
		}
		for key, k := range running {
			if counts[key] > 0 {
				k.empty = 0
				continue
			}
			if !ticked {
				continue
			}
			// Its jobs may be in other nodes' hands: stop after a while.
			if k.empty++; k.empty > 30 {
				k.cancel()
				delete(running, key)
				w.keeping.Delete(key)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			ticked = true
		case <-w.keepNudge:
			ticked = false
		}
	}
}

// nudgeKeepers wakes the keepers' loop when a job was just parked for a
// target this node runs no keeper for, so that one starts at once rather
// than at the loop's next poll, up to a second later: a new destination
// that gets a burst parks what goes beyond its first 16 calls until they
// answer (handleLive), and those jobs waited that second (the maximum of
// about 975 ms of every run of bench latency at 5,000 events/s). Targets
// with a keeper already running do not wake it, so a destination whose
// events are all parked costs no poll each.
func (w *Worker) nudgeKeepers(j store.Job) {
	if _, ok := w.keeping.Load(store.TargetKey(j.RuleArn, j.TargetID)); ok {
		return
	}
	select {
	case w.keepNudge <- struct{}{}:
	default:
	}
}

// keepParked holds a parked job until it is done: delivered (or otherwise
// run to an outcome by the normal path), or dead-lettered when its retry
// policy runs out. It returns nil once the job's outcome is durable, and
// store.ErrHandBack when it would wait while another job in hand does.
//
// Waiting ends with ctx (shutdown: the job is handed back); work, once
// begun, runs with workCtx, which outlives ctx by the shutdown grace.
func (w *Worker) keepParked(ctx, workCtx context.Context, hd *hand, p store.Parked) (err error) {
	waiting, probed := false, false
	defer func() {
		if waiting {
			hd.done()
		}
		// Run to an outcome other than by a probe: the jobs behind it may
		// be ready too (a drain, a sweep of expired ones).
		if err == nil && !probed {
			hd.busy()
		}
	}()
	for {
		t, ok := w.cfg.Config.Target(p.RuleArn, p.TargetID)
		if !ok {
			w.log.Info("target gone; parked job dropped", "event_id", p.EventID, "rule", p.RuleArn, "target", p.TargetID)
			w.redriven(workCtx, p.Job, t, Result{Message: "the rule or its target no longer exists"}, store.OutcomeDropped)
			return nil
		}
		if t.Destination == nil {
			// No longer an API destination: run it the normal way, here
			// (queued again, its message id could be taken for a repeat
			// of the one it came with).
			return w.run(workCtx, p.Job, t, runNormal)
		}
		if st := t.Destination.ConnectionState; st != "AUTHORIZED" && !(st == "AUTHORIZING" && t.Destination.OAuth != nil) {
			// Its connection cannot invoke: the normal path fails it at
			// once (INVALID_PARAMETER), as it would any job, without a
			// request and without waiting for the circuit.
			return w.run(workCtx, p.Job, t, runProbe)
		}
		dest := t.Destination.Arn
		now := w.cfg.Now()
		h, changed := w.circuit(dest)
		// The job's schedule, on the time its destination was failing.
		sp := w.shifted(p, dest, now)
		if h == nil {
			// It answers again: run the job now, its missed attempts
			// counted (run ends it if it is too old), and let the keeper
			// take more at once.
			if waiting {
				waiting = false
				hd.done()
			}
			hd.busy()
			j := p.Job
			j.Attempt = w.madeBy(sp, t, now)
			return w.run(workCtx, j, t, runDrain)
		}
		pl := w.plan(sp, t)
		if !now.Before(pl.deadline) {
			j := p.Job
			if !h.LastFailed.After(p.ParkedAt) {
				// Nothing has tried the destination since the job was
				// parked: before its retry policy ends it, it gets one
				// real attempt (EventBridge would have made at least one).
				j.Attempt = min(pl.retries, t.MaxRetries)
				return w.run(workCtx, j, t, runProbe)
			}
			j.Attempt = pl.retries
			code, msg := h.Code, h.Message
			if code == "" {
				code, msg = p.LastCode, p.LastMessage
			}
			return w.deadLetter(workCtx, j, t, Result{Code: code, Message: msg}, pl.exhausted)
		}
		// One job in hand waits, and makes the probes when they are due.
		if !waiting {
			if !hd.wait() {
				return store.ErrHandBack
			}
			waiting = true
		}
		if !now.Before(h.NextProbe) {
			won, err := w.cfg.Store.ClaimProbe(ctx, dest, now, now.Add(w.probeEvery(h.Probes+1)))
			if err != nil {
				return err
			}
			if won {
				probed = true
				j := p.Job
				j.Attempt = w.madeBy(sp, t, now)
				w.log.Info("probing a failing destination", "destination", dest, "event_id", j.EventID)
				return w.run(workCtx, j, t, runProbe)
			}
		}
		// Wait for its deadline, the next probe or a change of the
		// circuit; at most a second, so that a clock moved by a test is
		// noticed too.
		wait := min(pl.deadline.Sub(now), time.Second)
		if d := h.NextProbe.Sub(now); d > 0 {
			wait = min(wait, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(max(wait, 10*time.Millisecond)):
		}
	}
}
