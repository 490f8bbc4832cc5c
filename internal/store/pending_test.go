package store

import (
	"context"
	"slices"
	"sync/atomic"
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
	rctx, stopRouter := context.WithCancel(ctx)
	var routed atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.RouteEvents(rctx, func(context.Context, Event) error { routed.Add(1); return nil })
	}()
	waitFor(t, "two events routed", func() bool { return routed.Load() == 2 })
	stopRouter()
	<-done
	waitFor(t, "the router's acknowledgements", func() bool {
		p, err := s.ReadPending(ctx)
		return err == nil && len(p.Unrouted) == 0
	})
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
