package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestReadPending: what the pipeline holds is read back by event: the
// events past the router's acknowledgement floor, and the targets of the
// jobs queued and delayed.
func TestReadPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Now()
	if err := s.AppendEvents(ctx, []Event{{ID: "e1", Bus: "default", Ingested: now, Data: []byte(`{}`)},
		{ID: "e2", Bus: "default", Ingested: now, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	// Before the router exists, every event is unrouted.
	p, err := s.ReadPending(ctx)
	if err != nil || len(p.Unrouted) != 2 || len(p.Jobs) != 0 {
		t.Fatalf("before routing: %+v, %v", p, err)
	}
	routeAll(t, s, 2)
	if p, err := s.ReadPending(ctx); err != nil || len(p.Unrouted) != 0 {
		t.Fatalf("after routing: %+v, %v", p, err)
	}
	if err := s.AppendEvents(ctx, []Event{{ID: "e3", Bus: "default", Ingested: now, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	job := Job{EventID: "e1", Bus: "default", RuleArn: "arn:rule", TargetID: "a", Ingested: now, Event: []byte(`{}`)}
	if err := s.AppendJobs(ctx, []Job{job}); err != nil {
		t.Fatal(err)
	}
	job.EventID, job.TargetID, job.Attempt = "e2", "b", 1
	if err := s.Delay(ctx, job, time.Hour); err != nil {
		t.Fatal(err)
	}
	p, err = s.ReadPending(ctx)
	if err != nil || len(p.Unrouted) != 1 || !p.Unrouted["e3"] || len(p.Jobs) != 2 ||
		!slices.Equal(p.Jobs["e1"], []string{"a"}) || !slices.Equal(p.Jobs["e2"], []string{"b"}) {
		t.Errorf("pending: %+v, %v", p, err)
	}
}
