package eventbus

import (
	"context"
	"errors"
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
		err := s.st.RouteEvents(ctx, s.routeEvent, aside)
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

func (s *Service) routeEvent(ctx context.Context, ev store.Event) error {
	var rules []Rule
	var err error
	if ev.Rule != "" {
		// A scheduled rule's event goes to that rule's targets only, if it
		// is still there and enabled.
		if r, ok := s.reg.ruleByArn(s.arns, ev.Rule); ok && r.enabled() {
			rules = []Rule{r}
		}
	} else {
		mctx, cancel := context.WithTimeout(ctx, s.matchTime)
		rules, err = s.reg.match(mctx, ev.Bus, ev.Data)
		cancel()
	}
	if err != nil {
		var evErr *pattern.EventError
		switch {
		case errors.As(err, &evErr):
			// PutEvents checks events before it stores them, so this is an
			// event stored by another version, or a bug: it can never match.
			return &store.Unroutable{Reason: "the event does not parse", Final: true, Err: err}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return &store.Unroutable{Reason: "matching the event took longer than " + s.matchTime.String(), Err: err}
		}
		return err
	}
	jobs, archived, labels, counts := s.jobsFor(ev, rules, "")
	if len(jobs) > 0 && s.parkFailing != nil {
		var err error
		if jobs, err = s.parkFailing(ctx, jobs); err != nil {
			return err
		}
	}
	if len(jobs) > 0 || len(archived) > 0 {
		if err := s.st.AppendRouted(ctx, jobs, archived); err != nil {
			return err
		}
	}
	// Counted once the jobs are stored; an event routed again after a
	// crash may be counted twice.
	s.metrics.Matched(ev.Bus, labels, counts)
	return nil
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
