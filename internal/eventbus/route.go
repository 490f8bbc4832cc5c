package eventbus

import (
	"context"
	"errors"
	"time"

	"bridgeport/internal/pattern"
	"bridgeport/internal/store"
)

// route matches every stored event against the enabled rules of its bus and
// queues one delivery job per matched rule and target, until ctx ends. The
// store offers each event once (again after a crash; jobs carry ids that
// make the second queueing a no-op).
func (s *Service) route(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.st.RouteEvents(ctx, s.routeEvent)
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

func (s *Service) routeEvent(ctx context.Context, ev store.Event) error {
	rules, err := s.reg.match(ev.Bus, ev.Data)
	if err != nil {
		var evErr *pattern.EventError
		if errors.As(err, &evErr) {
			// Events are checked before they are stored; one that does not
			// parse cannot match any rule.
			s.log.Error("stored event does not parse", "event_id", ev.ID, "bus", ev.Bus, "error", err)
			return nil
		}
		return err
	}
	var jobs []store.Job
	for _, r := range rules {
		for _, t := range r.Targets {
			jobs = append(jobs, store.Job{EventID: ev.ID, Bus: ev.Bus, RuleArn: r.Arn, TargetID: t.Id, Ingested: ev.Ingested, Event: ev.Data})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	return s.st.AppendJobs(ctx, jobs)
}
