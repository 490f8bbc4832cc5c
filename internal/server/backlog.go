package server

import (
	"context"
	"fmt"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	"bridgeport/internal/deliver"
	"bridgeport/internal/eventbus"
	"bridgeport/internal/store"
)

// checkBacklog reports, in one line, what waits for a target: how many
// events, since when, whether its destination's circuit is open (its
// events parked) and when it is tried next.
func (s *Server) checkBacklog(ctx context.Context, d *diagnosis, id string, r eventbus.Rule, rt deliver.Target) {
	b, err := s.store.TargetBacklog(ctx, store.TargetKey(r.Arn, id))
	if err != nil {
		d.add(admin.Finding{Check: "backlog", Target: id, Status: admin.StatusWarning, Message: "could not read the backlog: " + err.Error()})
		return
	}
	var h *store.Health
	if rt.Destination != nil {
		if h, err = s.store.CircuitOf(ctx, rt.Destination.Arn); err != nil {
			d.add(admin.Finding{Check: "backlog", Target: id, Status: admin.StatusWarning, Message: "could not read the destination's health: " + err.Error()})
			return
		}
	}
	tb := admin.TargetBacklog{TargetId: id, Delayed: b.Delayed, Parked: b.Parked}
	if !b.Oldest.IsZero() {
		tb.Oldest = &awsapi.Time{Time: b.Oldest}
	}
	d.out.Backlogs = append(d.out.Backlogs, tb)
	waiting := tb.Total()
	if waiting == 0 && h == nil {
		d.add(admin.Finding{Check: "backlog", Target: id, Status: admin.StatusOK, Message: "no event waits for a retry"})
		return
	}
	now := time.Now()
	msg := fmt.Sprintf("%d event(s) wait (%d for a retry, %d parked)", waiting, b.Delayed, b.Parked)
	if !b.Oldest.IsZero() {
		msg += fmt.Sprintf(", the oldest accepted %s ago", now.Sub(b.Oldest).Round(time.Second))
	}
	if h == nil {
		d.add(admin.Finding{Check: "backlog", Target: id, Status: admin.StatusWarning, Message: msg + "; each is retried on its own schedule",
			Fix: "see recent attempts below for why they fail"})
		return
	}
	next := "now"
	if h.NextProbe.After(now) {
		next = "in " + h.NextProbe.Sub(now).Round(time.Second).String()
	}
	d.add(admin.Finding{Check: "backlog", Target: id, Status: admin.StatusProblem,
		Message: fmt.Sprintf("%s; destination %s keeps failing (%s: %s) since %s: its events are parked, and one is tried as a probe %s (%d probe(s) so far)",
			msg, rt.Destination.Arn, h.Code, h.Message, h.Since.UTC().Format(time.RFC3339), next, h.Probes),
		Fix: "make the endpoint answer (bridgeport diagnose --probe tries it now); once a probe succeeds, the parked events are delivered oldest first at the destination's rate limit, and those whose retry policy ran out go to the dead-letter queue"})
}
