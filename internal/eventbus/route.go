package eventbus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"bridgeport/internal/metrics"
	"bridgeport/internal/pattern"
	"bridgeport/internal/store"
)

// route matches every stored event against the enabled rules of its bus and
// queues one delivery job per matched rule and target, until ctx ends. The
// store offers each event once (again after a crash; jobs carry ids that
// make the second queueing a no-op).
func (s *Service) route(ctx context.Context) {
	aside := func(ev store.Event, reason string) { s.metrics.SetAside(ev.Bus, reason) }
	for ctx.Err() == nil {
		err := s.st.RouteEvents(ctx, s.routeEvents, aside)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Error("routing stopped; restarting", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// defaultMatchTimeout bounds the matching of one event. Matching takes
// time polynomial in the size of the event, milliseconds for any ordinary
// one; an event that takes longer is tried again (maybe on a node with
// more time), and set aside after a few tries. It is shorter than the
// router's acknowledgement wait, so an event is never routed twice at
// once.
const defaultMatchTimeout = 2 * time.Second

// routeEvents routes the events of one stored message: each is matched
// against its bus's rules, the first attempts the worker can take at once
// start (Config.Direct), and the other jobs and the archive writes of them
// all are stored together, so that a PutEvents call's events cost one
// round of writes. It returns an outcome per event and, when jobs started
// or were queued in batches, a wait (for the started ones' durable
// outcomes): the message is settled after it, its acknowledgement
// confirmed.
func (s *Service) routeEvents(ctx context.Context, events []store.Event) ([]error, func() error) {
	errs := make([]error, len(events))
	var jobs []store.Job
	var archived []store.Archived
	type matched struct {
		bus    string
		labels []metrics.Rule
		counts []int
	}
	var counted []matched
	for i, ev := range events {
		rules, err := s.matchEvent(ctx, ev)
		if err != nil {
			errs[i] = err
			continue
		}
		j, a, labels, counts := s.jobsFor(ev, rules, "")
		jobs, archived = append(jobs, j...), append(archived, a...)
		counted = append(counted, matched{ev.Bus, labels, counts})
	}
	var err error
	if len(jobs) > 0 && s.parkFailing != nil {
		jobs, err = s.parkFailing(ctx, jobs)
	}
	// Direct first attempts only when every event of the message is
	// routed: a message offered again for one of its events is routed
	// again whole, and a job queued again is a no-op (its message id),
	// where one sent directly would be sent twice. And only while this
	// node holds fewer than maxSettling messages for their direct jobs:
	// the router's consumer holds at most 4,096 messages unacknowledged,
	// all nodes together.
	var taken Handover
	direct, batched := 0, false
	whole := !slices.ContainsFunc(errs, func(e error) bool { return e != nil })
	if err == nil && len(jobs) > 0 && s.direct != nil && s.settling.Load() < maxSettling && whole {
		n := len(jobs)
		jobs, taken = s.direct(jobs)
		direct = n - len(jobs)
	}
	if err == nil && (len(jobs) > 0 || len(archived) > 0) {
		// Stored before the direct jobs start: if this fails, the message
		// is offered again, and none of its events was sent yet. In
		// batches only when the message is routed whole, the first time it
		// is offered: a message offered again (one of its events failed,
		// or a node crashed) may have queued jobs already, alone or in
		// batches of a different set, which only jobs queued alone, each
		// with its own message id, do not queue again.
		batched = whole && !events[0].Again && len(jobs) > 0
		err = s.st.AppendRouted(ctx, jobs, archived, batched)
	}
	if err != nil {
		if taken != nil {
			taken.Release()
		}
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs, nil
	}
	// Counted once the jobs are stored or started; an event routed again
	// after a crash may be counted twice.
	for _, m := range counted {
		s.metrics.Matched(m.bus, m.labels, m.counts)
	}
	s.metrics.Routed(direct, len(jobs))
	if taken == nil {
		if batched {
			// Nothing to wait for, but the message's acknowledgement is
			// confirmed, as when jobs started: a lost one would offer it
			// again, and its jobs, queued alone then, would not be taken
			// for those of its batches.
			return errs, func() error { return nil }
		}
		return errs, nil
	}
	s.settling.Add(1)
	taken.Start()
	return errs, func() error {
		defer s.settling.Add(-1)
		failed := taken.Wait()
		if len(failed) == 0 {
			return nil
		}
		// Jobs whose attempt has no durable outcome (the store failed,
		// the node is stopping) are queued, as they would have been, and
		// run again: only they, not their message's other events. Even
		// while the router stops: its message's other events were sent.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requeueWait)
		defer cancel()
		return s.st.AppendJobs(qctx, failed)
	}
}

// requeueWait bounds the queueing of direct jobs that did not end.
const requeueWait = 10 * time.Second

// maxSettling bounds the messages a node holds unacknowledged while their
// direct jobs run (beyond the 256 fetched ahead and the 16 being routed):
// with the router consumer's 4,096, ten nodes fit.
const maxSettling = 128

// matchEvent returns the rules an event goes to.
func (s *Service) matchEvent(ctx context.Context, ev store.Event) ([]Rule, error) {
	if ev.Rule != "" {
		// A scheduled rule's event goes to that rule's targets only, if it
		// is still there and enabled.
		if r, ok := s.reg.ruleByArn(s.arns, ev.Rule); ok && r.enabled() {
			return []Rule{r}, nil
		}
		return nil, nil
	}
	mctx, cancel := context.WithTimeout(ctx, s.matchTime)
	rules, err := s.reg.match(mctx, ev.Bus, ev.Data)
	cancel()
	if err != nil {
		var evErr *pattern.EventError
		switch {
		case errors.As(err, &evErr):
			// PutEvents checks events before it stores them, so this is an
			// event stored by another version, or a bug: it can never match.
			return nil, &store.Unroutable{Reason: "the event does not parse", Final: true, Err: err}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return nil, &store.Unroutable{Reason: "matching the event took longer than " + s.matchTime.String(), Err: err}
		}
		return nil, err
	}
	return rules, nil
}

// jobsFor returns the jobs of an event that matched rules, the archive
// writes of the archives' rules among them, and the matches to count.
// replay names the replay that sends the event again, if any.
func (s *Service) jobsFor(ev store.Event, rules []Rule, replay string) ([]store.Job, []store.Archived, []metrics.Rule, []int) {
	var jobs []store.Job
	var archived []store.Archived
	labels := make([]metrics.Rule, len(rules))
	counts := make([]int, len(rules))
	now := time.Now()
	for i, r := range rules {
		s.lastMatch.Store(r.Arn, now)
		labels[i] = metrics.Rule{Bus: r.Bus, Name: r.Name}
		for _, t := range r.Targets {
			if ev.Forwarded && s.busTarget(t.Arn) != "" {
				// EventBridge never routes an event on to a third bus.
				continue
			}
			counts[i]++
			if r.ManagedBy != "" {
				if a, ok := s.archiveTarget(t.Arn); ok {
					archived = append(archived, a.write(ev))
				}
				continue
			}
			jobs = append(jobs, store.Job{EventID: ev.ID, Bus: ev.Bus, RuleArn: r.Arn, TargetID: t.Id, Ingested: ev.Ingested,
				Replay: replay, Event: ev.Data})
		}
	}
	return jobs, archived, labels, counts
}

// archiveTarget returns the archive a managed rule's target names.
func (s *Service) archiveTarget(arn string) (Archive, bool) {
	name, ok := s.arns.archiveName(arn)
	if !ok {
		return Archive{}, false
	}
	a, _, ok := s.reg.getArchive(name)
	return a, ok && a.Detached == ""
}

// write is the archive write of an event. An event whose time does not
// parse (not one PutEvents made) is filed under hour 0 and still replays
// with a window that starts at the epoch.
func (a *Archive) write(ev store.Event) store.Archived {
	t, _ := eventTime(ev.Data)
	return store.Archived{Archive: a.ID, EventID: ev.ID, Time: t, Data: ev.Data}
}

// busTarget returns the bus a target ARN names, if it is an event bus of
// this account and region.
func (s *Service) busTarget(arn string) string {
	name, ok := strings.CutPrefix(arn, s.arns.prefix()+"event-bus/")
	if !ok {
		return ""
	}
	return name
}

// Forward puts an event a rule sent to an event bus target on that bus,
// as EventBridge does: same id and envelope, routed by that bus's rules
// but never on to a third bus. ok is false when the bus does not exist.
func (s *Service) Forward(ctx context.Context, bus, eventID, dedupeID string, event []byte, ingested time.Time) (bool, error) {
	if _, _, ok := s.reg.getBus(bus); !ok {
		return false, nil
	}
	return true, s.st.AppendEvents(ctx, []store.Event{{ID: eventID, Bus: bus, Ingested: ingested, Data: event, Forwarded: true, DedupeID: dedupeID}})
}
