package deliver

import (
	"context"
	"time"

	"bridgeport/internal/store"
)

// The router's shortcut. A live job's first attempt is usually delivered
// at once; queueing it in the jobs stream first cost a write, a read and
// an acknowledgement for every delivery, and a hop of latency. So the
// router hands the jobs it has just matched to Direct, which takes those
// whose first attempt it can start straight away; the router stores the
// others, then starts the ones taken (Handover.Start), which run in
// memory to the durable outcome run guarantees (delivered, delayed for a
// retry, parked or dead-lettered). The router acknowledges the events'
// message once they have ended, and queues those that have no durable
// outcome (the store was unavailable, the node stopped before their call
// ended), so that they run again, and only they. After a crash the
// message is routed again, so a job run directly is at least once, as a
// queued one is.
//
// Direct takes only what cannot hold the router or other tenants: jobs of
// targets that exist, whose destination (if any) has answered its last
// call, has no open circuit, is not failing and has not stalled, and has
// fewer jobs running this way than it may have calls in flight plus the
// workers that may wait for its slots (waitRoom); and only while fewer
// than directMax jobs run this way in all. The rest are queued as before,
// where the shared workers, the keepers and the circuits deal with them.
// A job taken waits up to slotWait for its destination's slot (runDirect):
// a destination that answers in milliseconds and pauses for a few (a
// garbage collection, a busy machine) has its next jobs wait for it in
// memory, not sent round the delay tiers for half a second or more. One
// that starts to hang holds at most its calls in flight, and its waiting
// jobs for a second; the router never waits for it. A job that finds no
// slot, or is turned away by its rate limit, goes the way run sends
// it, as a queued job would.

// directMax is how many jobs may run directly at a time, as many as the
// shared workers: beyond it the router queues jobs.
func (w *Worker) directMax() int { return max(w.cfg.Workers, 1) }

// Direct takes, of jobs, those whose first attempt it can start now (see
// above) and returns the others, for the router to queue, in their order,
// and the ones it took (nil if none). The router starts those once the
// others are stored (Start), or gives them back (Release), and waits for
// them (Wait). Direct takes nothing while the worker is not running or is
// stopping.
func (w *Worker) Direct(jobs []store.Job) (rest []store.Job, taken *Handover) {
	// The targets are resolved before the worker's lock is taken.
	targets := make([]Target, len(jobs))
	found := make([]bool, len(jobs))
	for i, j := range jobs {
		if j.Attempt == 0 && j.Replay == "" && j.Redrive == "" {
			targets[i], found[i] = w.cfg.Config.Target(j.RuleArn, j.TargetID)
		}
	}
	w.mu.Lock()
	ctx := w.directCtx
	if ctx == nil || w.directStop.Err() != nil {
		w.mu.Unlock()
		return jobs, nil
	}
	// h.targets reuses targets' array: its k-th append, k <= i, writes
	// over an entry already read.
	h := &Handover{w: w, ctx: ctx, jobs: make([]store.Job, 0, len(jobs)), targets: targets[:0], dests: make([]string, 0, len(jobs))}
	rest = jobs[:0:0]
	for i, j := range jobs {
		dest, ok := "", false
		if found[i] && w.direct < w.directMax() {
			dest, ok = w.directableLocked(&targets[i])
		}
		if !ok {
			rest = append(rest, j)
			continue
		}
		w.direct++
		w.directFor[dest]++
		h.jobs, h.targets, h.dests = append(h.jobs, j), append(h.targets, targets[i]), append(h.dests, dest)
	}
	w.directWG.Add(len(h.jobs))
	w.mu.Unlock()
	if len(h.jobs) == 0 {
		return jobs, nil
	}
	return rest, h
}

// Handover is the jobs Direct took for the router: each holds its
// destination's share of the direct jobs until it ends, or is released.
type Handover struct {
	w       *Worker
	ctx     context.Context
	jobs    []store.Job
	targets []Target // each job's, resolved by Direct
	dests   []string
	ended   chan *store.Job // each job as it ends: nil when its outcome is durable
}

// Start runs the jobs, each to a durable outcome (run's) if it can.
func (h *Handover) Start() {
	h.ended = make(chan *store.Job, len(h.jobs))
	for i, j := range h.jobs {
		go func() {
			defer h.done(i)
			h.w.noteLive(j, time.Now())
			if err := h.w.run(h.ctx, j, h.targets[i], runDirect); err != nil {
				if h.ctx.Err() == nil {
					h.w.log.Warn("direct delivery did not end; queued", "event_id", j.EventID, "rule", j.RuleArn, "target", j.TargetID, "error", err)
				}
				h.ended <- &j
				return
			}
			h.ended <- nil
		}()
	}
}

// Release gives the jobs back without running them.
func (h *Handover) Release() {
	for i := range h.jobs {
		h.done(i)
	}
}

// done counts the i-th job as no longer held.
func (h *Handover) done(i int) {
	w := h.w
	w.mu.Lock()
	w.direct--
	if w.directFor[h.dests[i]]--; w.directFor[h.dests[i]] <= 0 {
		delete(w.directFor, h.dests[i])
	}
	w.mu.Unlock()
	w.directWG.Done()
}

// Wait waits until every job started has ended, and returns those that
// have no durable outcome (the store was unavailable, or the worker
// stopped before their call ended): the router queues them, so that they
// are run again, and only they. Call it once, after Start.
func (h *Handover) Wait() []store.Job {
	var failed []store.Job
	for range h.jobs {
		if j := <-h.ended; j != nil {
			failed = append(failed, *j)
		}
	}
	return failed
}

// directableLocked reports whether the first attempt of a job of target t
// may run directly, and the destination it counts against ("" for a bus
// or a queue). Called with w.mu held.
func (w *Worker) directableLocked(t *Target) (string, bool) {
	if t.Destination == nil {
		// A bus or a queue: a write to the store.
		return "", t.Bus != "" || t.Queue != ""
	}
	if t.Destination.ConnectionState != "AUTHORIZED" {
		return "", false
	}
	d := t.Destination.Arn
	if _, failing := w.failing[d]; failing || w.open[d] != nil || !w.answered[d] || w.stalled(d, time.Now()) {
		return "", false
	}
	if _, size := w.slotsOf(d); w.directFor[d] >= size+w.waitRoom(d) {
		return "", false
	}
	return d, true
}

// acceptDirect lets Direct take jobs until stopping ends, and run them
// with ctx; the returned stop waits for those taken.
func (w *Worker) acceptDirect(stopping, ctx context.Context) (stop func()) {
	w.mu.Lock()
	w.directCtx, w.directStop = ctx, stopping
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.directCtx, w.directStop = nil, nil
		w.mu.Unlock()
		w.directWG.Wait()
	}
}
