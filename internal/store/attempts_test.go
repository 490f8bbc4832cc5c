package store

import (
	"context"
	"encoding/json"
	"fmt"
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
