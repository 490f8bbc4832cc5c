package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"bridgeport/internal/store"
)

// Replays run on one node at a time. Every node looks at the replays
// that are not finished every second (and at once when one starts or is
// cancelled here); one whose owner's lease has run out (a new replay, or
// its node died) is claimed with a compare-and-set of its record, so one
// node wins, and run from the progress its record holds. The runner
// writes its progress after each batch of jobs it stores (replayBatch
// events), which renews its lease; while it waits for room on the lane,
// it renews the lease every replayCheckpoint. A replay whose node dies
// goes on elsewhere within replayLease and sends again at most the batch
// after its last progress write; those jobs have the same ids as before,
// so JetStream drops the ones still queued as duplicates.
const (
	replayLease      = 15 * time.Second
	replayCheckpoint = time.Second
	replayBatch      = 256
	// defaultReplayBacklog bounds the jobs of replayed events waiting on
	// the replay lane: a replay waits while more are queued, so that it
	// goes at the pace its deliveries go, rather than copy its archive
	// to disk and take the machine from live traffic (docs/BENCHMARKS.md).
	defaultReplayBacklog = 5000
)

// errReplayOver stops a run whose record says it should stop: cancelled,
// deleted, or taken over by another node.
var errReplayOver = errors.New("replay no longer run by this node")

func (s *Service) wakeReplays() {
	select {
	case s.replayWake <- struct{}{}:
	default:
	}
}

// runReplays claims and runs replays until ctx ends.
func (s *Service) runReplays(ctx context.Context) {
	var mu sync.Mutex
	running := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.replayWake:
		}
		rs, revs := s.replays()
		now := s.now()
		for i := range rs {
			r, rev := rs[i], revs[i]
			mu.Lock()
			mine := running[r.Name]
			mu.Unlock()
			switch {
			case mine:
				continue
			case r.finished():
				if now.Sub(r.Ended) > replayKeep {
					_, _ = s.st.Delete(ctx, replayKey(r.Name), rev)
				}
				continue
			case r.Owner != "" && now.Before(r.Lease):
				continue
			}
			if r.State == ReplayCancelling {
				// Nobody runs it: cancelled at once.
				r.State, r.Ended, r.Owner, r.Lease = ReplayCancelled, now.UTC(), "", time.Time{}
				_, _ = s.put(ctx, replayKey(r.Name), rev, r)
				continue
			}
			r.Owner, r.Lease, r.State = s.node, now.Add(replayLease), ReplayRunning
			nrev, err := s.put(ctx, replayKey(r.Name), rev, r)
			if err != nil {
				continue // another node claimed it first, or it changed
			}
			mu.Lock()
			running[r.Name] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.runReplay(ctx, r, nrev)
				mu.Lock()
				delete(running, r.Name)
				mu.Unlock()
			}()
		}
	}
}

// replayRun is one node's run of a replay.
type replayRun struct {
	s     *Service
	r     Replay
	rev   uint64
	saved time.Time // the last progress write
	// batch holds the jobs of events read since the last flush; cur is
	// the position of the last event read.
	batch   []store.Job
	skipped int // events read since the last flush that are not in the window
	events  int64
	last    time.Time
	curHour int64
	curSeq  uint64
}

func (s *Service) runReplay(ctx context.Context, r Replay, rev uint64) {
	run := &replayRun{s: s, r: r, rev: rev, saved: time.Now()}
	err := run.run(ctx)
	if ctx.Err() != nil {
		// Stopping: the progress up to the last batch stored is kept.
		run.release()
		return
	}
	final := ReplayCompleted
	var reason *string
	switch {
	case errors.Is(err, errReplayOver):
		if run.r.State != ReplayCancelling || run.r.Owner != s.node {
			return // deleted, or another node runs it now
		}
		final = ReplayCancelled
	case err != nil:
		final = ReplayFailed
		msg := err.Error()
		if errors.Is(err, store.ErrNoArchive) {
			msg = "Archive " + r.Archive + " does not exist."
		}
		reason = &msg
		s.log.Error("replay failed", "replay", r.Name, "error", err)
	}
	if err := run.finish(ctx, final, reason); err != nil && ctx.Err() == nil {
		s.log.Warn("record the end of a replay", "replay", r.Name, "error", err)
	}
}

func (run *replayRun) run(ctx context.Context) error {
	s, r := run.s, &run.r
	if r.Mark == 0 {
		mark, err := s.st.ArchiveMark(ctx, r.ArchiveID)
		if err != nil {
			return err
		}
		if mark == 0 {
			return nil // an empty archive
		}
		r.Mark = mark
		if err := run.checkpoint(ctx); err != nil {
			return err
		}
	}
	hours, err := s.st.ArchiveHours(ctx, r.ArchiveID, store.ArchiveHour(r.Start), store.ArchiveHour(r.End))
	if err != nil {
		return err
	}
	for _, h := range hours {
		if h < r.Hour {
			continue
		}
		after := uint64(0)
		if h == r.Hour {
			after = r.Seq
		}
		err := s.st.ReadArchiveHour(ctx, r.ArchiveID, h, after, r.Mark, func(seq uint64, data []byte) error {
			run.add(ctx, data)
			run.curHour, run.curSeq = h, seq
			if len(run.batch) >= replayBatch || run.skipped >= replayBatch {
				return run.flush(ctx)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The hour is done.
		run.curHour, run.curSeq = h+1, 0
		if err := run.flush(ctx); err != nil {
			return err
		}
	}
	return run.flush(ctx)
}

// add reads one archived event and adds the jobs of its replay, if it is
// in the replay's window, to the batch.
func (run *replayRun) add(ctx context.Context, data []byte) {
	s, r := run.s, &run.r
	t, err := eventTime(data)
	if err == nil && (t.Before(r.Start) || t.After(r.End)) {
		run.skipped++
		return
	}
	ev := store.Event{ID: eventID(data), Bus: r.Bus, Ingested: time.Now(), Data: withReplayName(data, r.Name)}
	mctx, cancel := context.WithTimeout(ctx, s.matchTime)
	rules, err := s.reg.match(mctx, r.Bus, ev.Data)
	cancel()
	if err != nil {
		s.log.Warn("replayed event not matched", "replay", r.Name, "event_id", ev.ID, "error", err)
		return
	}
	if len(r.FilterArns) > 0 {
		rules = slices.DeleteFunc(rules, func(rule Rule) bool { return !slices.Contains(r.FilterArns, rule.Arn) })
	}
	jobs, _, labels, counts := s.jobsFor(ev, rules, r.Name)
	s.metrics.Matched(r.Bus, labels, counts)
	run.batch = append(run.batch, jobs...)
	run.events++
	if t.After(run.last) {
		run.last = t
	}
}

// flush stores the batch's jobs, then moves the replay's progress to the
// last event read, and writes it when a second has passed since the last
// write.
func (run *replayRun) flush(ctx context.Context) error {
	s := run.s
	if err := run.waitForLane(ctx); err != nil {
		return err
	}
	if len(run.batch) > 0 {
		jobs := run.batch
		if s.parkFailing != nil {
			var err error
			if jobs, err = s.parkFailing(ctx, jobs); err != nil {
				return err
			}
		}
		if len(jobs) > 0 {
			if err := s.st.AppendReplayJobs(ctx, jobs); err != nil {
				return err
			}
		}
		run.batch = run.batch[:0]
	}
	r := &run.r
	r.Hour, r.Seq = run.curHour, run.curSeq
	r.Replayed += run.events
	run.events, run.skipped = 0, 0
	if run.last.After(r.LastReplayed) {
		r.LastReplayed = run.last.UTC()
	}
	return run.checkpoint(ctx)
}

// waitForLane waits while the replay lane holds more jobs than the
// service's bound, renewing the lease.
func (run *replayRun) waitForLane(ctx context.Context) error {
	for {
		n, err := run.s.st.ReplayBacklog(ctx)
		if err != nil {
			return err
		}
		if n < run.s.replayBacklog {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if time.Since(run.saved) >= replayCheckpoint {
			if err := run.checkpoint(ctx); err != nil {
				return err
			}
		}
	}
}

// checkpoint writes the replay's progress and renews the lease. A record
// changed by someone else (a cancel, a delete, a new owner) ends the run
// with errReplayOver, with run.r as the record now is.
func (run *replayRun) checkpoint(ctx context.Context) error {
	s := run.s
	run.r.Lease = s.now().Add(replayLease)
	rev, err := s.put(ctx, replayKey(run.r.Name), run.rev, run.r)
	if err == nil {
		run.rev, run.saved = rev, time.Now()
		return nil
	}
	if !lostRace(err) {
		return err
	}
	now, err := run.reload(ctx)
	if errors.Is(err, store.ErrNotFound) {
		run.r.Owner = ""
		return errReplayOver // deleted
	}
	if err != nil {
		return err
	}
	run.r.State, run.r.Owner = now.State, now.Owner
	return errReplayOver
}

// reload reads the replay's record as it is now, after a write of this
// run's lost to another, and makes its revision the one to write at.
func (run *replayRun) reload(ctx context.Context) (Replay, error) {
	e, err := run.s.st.Get(ctx, replayKey(run.r.Name))
	if err != nil {
		return Replay{}, err
	}
	var now Replay
	if err := json.Unmarshal(e.Value, &now); err != nil {
		return Replay{}, err
	}
	run.rev = e.Revision
	return now, nil
}

// finish records the replay's end. A cancel that comes after every event
// was sent is too late: the replay is COMPLETED.
func (run *replayRun) finish(ctx context.Context, state string, reason *string) error {
	s := run.s
	for {
		r := run.r
		r.State, r.StateReason, r.Ended, r.Owner, r.Lease = state, reason, s.now().UTC(), "", time.Time{}
		_, err := s.put(ctx, replayKey(r.Name), run.rev, r)
		if !lostRace(err) {
			return err
		}
		now, err := run.reload(ctx)
		if err != nil {
			return err
		}
		if now.Owner != s.node || now.finished() {
			return nil
		}
		run.r.State = now.State
	}
}

// release gives up the replay's lease when the node stops, so that
// another node, or this one when it starts again, carries on at once.
func (run *replayRun) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r := run.r
	r.Owner, r.Lease = "", time.Time{}
	_, _ = run.s.put(ctx, replayKey(r.Name), run.rev, r)
}

// eventID returns the event's id member.
func eventID(event []byte) string {
	_, vs, ve, ok := topMember(event, "id")
	if !ok || ve-vs < 2 || event[vs] != '"' {
		return ""
	}
	return string(event[vs+1 : ve-1])
}
