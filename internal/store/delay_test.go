package store

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func TestTierFor(t *testing.T) {
	t.Parallel()
	for wait, want := range map[time.Duration]int{0: 0, 50 * time.Millisecond: 0, time.Second: 1, 9 * time.Second: 1,
		15 * time.Second: 2, 5 * time.Minute: 3, 59 * time.Minute: 4, 24 * time.Hour: 5} {
		if got := tierFor(wait); got != want {
			t.Errorf("tierFor(%s) = %d, want %d", wait, got, want)
		}
	}
}

// TestDelayedJobs delays jobs by different waits and checks each comes
// back to the jobs stream once, not before it is due, across a restart.
func TestDelayedJobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir)
	start := time.Now()
	waits := map[string]time.Duration{"a": 50 * time.Millisecond, "b": 400 * time.Millisecond, "c": 1500 * time.Millisecond}
	for id, w := range waits {
		if err := s.Delay(ctx, Job{EventID: id, RuleArn: "r", TargetID: "t", Ingested: start, Attempt: 1, Event: []byte(`{}`)}, w); err != nil {
			t.Fatal(err)
		}
	}
	// A restart before anything moved: the waiting jobs are on disk.
	s.Close()
	s = open(t, dir)
	defer s.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.RunDelays(rctx)
	got := make(chan Job, 10)
	go s.ConsumeJobs(rctx, rctx, 2, func(_ context.Context, j Job) error {
		if time.Since(start) < waits[j.EventID] {
			t.Errorf("job %s back after %s, before its wait of %s", j.EventID, time.Since(start), waits[j.EventID])
		}
		got <- j
		return nil
	})
	seen := map[string]bool{}
	for range waits {
		select {
		case j := <-got:
			if seen[j.EventID] || j.Attempt != 1 {
				t.Errorf("job %+v", j)
			}
			seen[j.EventID] = true
		case <-time.After(time.Minute):
			t.Fatalf("only %v came back", seen)
		}
	}
	select {
	case j := <-got:
		t.Errorf("job %s came back twice", j.EventID)
	case <-time.After(300 * time.Millisecond):
	}
}

// BenchmarkAppendJobs measures queueing the delivery jobs of one routed
// event batch: 10 jobs of 1 KB events, stored durably (embedded store,
// default sync).
func BenchmarkAppendJobs(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	event := make([]byte, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		jobs := make([]Job, 10)
		for k := range jobs {
			i++
			jobs[k] = Job{EventID: strconv.Itoa(i), Bus: "default", RuleArn: "arn:aws:events:us-east-1:000000000000:rule/r", TargetID: "t",
				Ingested: time.Now(), Event: event}
		}
		if err := s.AppendJobs(ctx, jobs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "jobs/s")
}
