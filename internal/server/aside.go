package server

import (
	"context"
	"fmt"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/eventbus"
)

// checkAside reports events of the rule's bus that the router set aside:
// events it could not route, which no rule of the bus received.
func (s *Server) checkAside(ctx context.Context, d *diagnosis, r eventbus.Rule) {
	sum, err := s.store.Aside(ctx, r.Bus)
	if err != nil {
		d.add(admin.Finding{Check: "routing", Status: admin.StatusWarning, Message: "could not read the events set aside: " + err.Error()})
		return
	}
	if sum.Count == 0 {
		return
	}
	d.add(admin.Finding{Check: "routing", Status: admin.StatusProblem,
		Message: fmt.Sprintf("%d event(s) of event bus %s could not be routed and were set aside; the latest, %s at %s: %s",
			sum.Count, r.Bus, sum.EventID, sum.Last.UTC().Format(time.RFC3339), sum.Reason),
		Fix: "bridgeport events trace " + sum.EventID + " shows it; an event whose matching ran out of time is too large for the rules of its bus: send smaller events, or raise --match-timeout"})
}
