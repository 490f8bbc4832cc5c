package deliver

import (
	"context"
	"sync"
	"time"

	"bridgeport/internal/store"
)

// The router's shortcut. A live job's first attempt is usually delivered
// at once; queueing it in the jobs stream first cost a write, a read and
// an acknowledgement, all on the store's single writer, for every
// delivery, and a hop of latency. So the router hands the jobs it has just
// matched to Direct, which runs the first attempt of those it can take
// straight away, in memory, and tells the router when each has a durable
// outcome (delivered and logged, delayed for a retry, parked or
// dead-lettered: what handle guarantees). The router acknowledges the
// events' message only then; after a crash the message is routed again,
// so a job run directly is at least once, as a queued one is.
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
// slot, or is turned away by its rate limit, goes the way handle sends
// it, as a queued job would.

// directMax is how many jobs may run directly at a time, as many as the
// shared workers: beyond it the router queues jobs.
func (w *Worker) directMax() int { return max(w.cfg.Workers, 1) }

// Direct starts the first attempt of each of jobs that it can take now
// (see above) and returns the others, for the router to queue, in their
// order. wait, when not nil, waits until every job taken has a durable
// outcome and returns the first error of them: such a job must be routed
// again. Direct takes nothing while the worker is not running or is
// stopping.
func (w *Worker) Direct(jobs []store.Job) (rest []store.Job, wait func() error) {
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
	var taken []store.Job
	var dests []string
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
		taken, dests = append(taken, j), append(dests, dest)
	}
	w.directWG.Add(len(taken))
	w.mu.Unlock()
	if len(taken) == 0 {
		return jobs, nil
	}
	errs := make(chan error, len(taken))
	for i, j := range taken {
		go func() {
			defer w.directWG.Done()
			w.noteLive(j, time.Now())
			err := w.handleAs(ctx, j, runDirect)
			w.mu.Lock()
			w.direct--
			if w.directFor[dests[i]]--; w.directFor[dests[i]] <= 0 {
				delete(w.directFor, dests[i])
			}
			w.mu.Unlock()
			errs <- err
		}()
	}
	var once sync.Once
	var first error
	return rest, func() error {
		once.Do(func() {
			for range taken {
				if err := <-errs; err != nil && first == nil {
					first = err
				}
			}
		})
		return first
	}
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

// runDirect lets Direct take jobs until stopping ends, and run them with
// ctx; the returned stop waits for those in flight.
func (w *Worker) runDirect(stopping, ctx context.Context) (stop func()) {
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
