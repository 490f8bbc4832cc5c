package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestAttemptsByEvent: an event's records are found by its id, both those
// on the 16 buckets of today and those written on the 256 buckets of
// before, and no other event's.
func TestAttemptsByEvent(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	rule, target := "arn:aws:events:us-east-1:000000000000:rule/r", "t"
	key := TargetKey(rule, target)
	ids := []string{"e-1", "e-2", "e-3", "e-4", "e-5", "e-6", "e-7", "e-8"}
	// The names of the two buckets of every id differ (a query names
	// both, and JetStream refuses filters that overlap).
	for i := range 1000 {
		id := fmt.Sprintf("id-%d", i)
		if eventBucket(id) == oldEventBucket(id) {
			t.Fatalf("%s: both buckets are %s", id, eventBucket(id))
		}
	}
	for _, id := range ids {
		s.LogAttempt(Attempt{Time: time.Now(), EventID: id, RuleArn: rule, TargetID: target, Attempt: 1, Outcome: OutcomeRetrying})
	}
	// A record as an earlier version wrote it.
	old, err := json.Marshal(Attempt{Time: time.Now(), EventID: "e-1", RuleArn: rule, TargetID: target, Attempt: 2, Outcome: OutcomeDelivered})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.js.Publish(ctx, attemptsSubject+"."+key+"."+oldEventBucket("e-1"), old); err != nil {
		t.Fatal(err)
	}
	var got []Attempt
	waitFor(t, "the records of e-1", func() bool {
		got, err = s.Attempts(ctx, AttemptFilter{EventID: "e-1", TargetKeys: []string{key}})
		return err == nil && len(got) == 2
	})
	for _, a := range got {
		if a.EventID != "e-1" {
			t.Errorf("a record of %s among e-1's", a.EventID)
		}
	}
	all, err := s.Attempts(ctx, AttemptFilter{})
	if err != nil || len(all) != len(ids)+1 {
		t.Errorf("all records: %d, %v; want %d", len(all), err, len(ids)+1)
	}
}

// TestAttemptsBatched: records logged together are stored in fewer
// messages, one record a line, and read back one by one: all of a
// target's, an event's among them, and only those since a time, which a
// message may straddle.
func TestAttemptsBatched(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	rule := "arn:aws:events:us-east-1:000000000000:rule/r"
	key := TargetKey(rule, "t")
	start := time.Now()
	const n = 1000
	for i := range n {
		s.LogAttempt(Attempt{Time: start.Add(time.Duration(i-n) * time.Millisecond), EventID: fmt.Sprint("e-", i%50),
			RuleArn: rule, TargetID: "t", Attempt: 1 + i/50, Outcome: OutcomeDelivered})
	}
	// A record of another target, in the same buckets.
	s.LogAttempt(Attempt{Time: start, EventID: "e-7", RuleArn: rule, TargetID: "other", Attempt: 1, Outcome: OutcomeDelivered})
	var got []Attempt
	var err error
	waitFor(t, "the target's records", func() bool {
		got, err = s.Attempts(ctx, AttemptFilter{TargetKeys: []string{key}, Limit: 2 * n})
		return err == nil && len(got) == n
	})
	// Oldest first, though one subject's message may follow another's
	// with newer records; and the newest are the last logged.
	if !slices.IsSortedFunc(got, func(x, y Attempt) int { return x.Time.Compare(y.Time) }) {
		t.Error("the records are not oldest first")
	}
	last, err := s.Attempts(ctx, AttemptFilter{TargetKeys: []string{key}, Limit: 3})
	if err != nil || len(last) != 3 {
		t.Fatalf("the last 3 records: %d, %v", len(last), err)
	}
	for k, a := range last {
		if want := start.Add(time.Duration(k-3) * time.Millisecond); !a.Time.Equal(want) {
			t.Errorf("the last 3 records: record %d started at %v, want %v", k, a.Time, want)
		}
	}
	seen := make(map[string]bool)
	for _, a := range got {
		k := fmt.Sprint(a.EventID, "/", a.Attempt)
		if seen[k] || a.TargetID != "t" {
			t.Fatalf("record %s of target %s: repeated or not the target's", k, a.TargetID)
		}
		seen[k] = true
	}
	st, err := s.js.Stream(ctx, attemptsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs >= n/2 { // 16 buckets: 63 records a message if all are logged within attemptLinger
		t.Errorf("%d records in %d messages: not batched", n+1, info.State.Msgs)
	}
	byEvent, err := s.Attempts(ctx, AttemptFilter{EventID: "e-7"})
	if err != nil || len(byEvent) != n/50+1 {
		t.Errorf("e-7's records: %d, %v; want %d", len(byEvent), err, n/50+1)
	}
	for _, a := range byEvent {
		if a.EventID != "e-7" {
			t.Errorf("a record of %s among e-7's", a.EventID)
		}
	}
	// Records are timed 1 ms apart up to start: since start-100ms are the
	// last 100, though the messages holding them hold earlier ones too.
	since, err := s.Attempts(ctx, AttemptFilter{TargetKeys: []string{key}, Since: start.Add(-100 * time.Millisecond)})
	if err != nil || len(since) != n-900 {
		t.Errorf("records since the 900th: %d, %v; want %d", len(since), err, n-900)
	}
}

// BenchmarkLogAttempt measures the attempt log's cost per record, the
// embedded engine's share included (it runs in this process): records of
// deliveries to 5 targets, logged, then published and stored. It reports
// the process's CPU time per record (cpu-ns/record), which, on a machine
// whose other tenants slow it, varies less than the wall time. In
// "paced", the pending records are published every 200 records, as at
// 10,000 deliveries a second (attemptLinger); in "burst", only as the
// batches fill.
func BenchmarkLogAttempt(b *testing.B) {
	for _, every := range []int{200, 0} {
		name := "paced"
		if every == 0 {
			name = "burst"
		}
		b.Run(name, func(b *testing.B) { benchLogAttempt(b, every) })
	}
}

func benchLogAttempt(b *testing.B, flushEvery int) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rules := make([]string, 5)
	for k := range rules {
		rules[k] = fmt.Sprintf("arn:aws:events:us-east-1:000000000000:rule/bench-%d", k)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	i := 0
	for b.Loop() {
		i++
		s.LogAttempt(Attempt{Time: time.Now(), EventID: fmt.Sprintf("7e1b3b5c-41c5-4a63-9d3c-%012d", i), Bus: "default",
			RuleArn: rules[i%len(rules)], TargetID: "target", TargetArn: "arn:aws:events:us-east-1:000000000000:api-destination/d/x",
			Attempt: 1, Duration: 900 * time.Microsecond, Status: 200, Outcome: OutcomeDelivered})
		if flushEvery > 0 && i%flushEvery == 0 {
			s.attempts.flush(s)
		}
	}
	// What was published is stored once a later acknowledged publish of
	// the same connection is: the stream takes its messages in order.
	s.attempts.flush(s)
	if _, err := s.js.Publish(ctx, attemptsSubject+".bench.x0", []byte("{}")); err != nil {
		b.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
