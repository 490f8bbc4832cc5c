package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"bridgeport/internal/natstest"
)

// TestMigrateStore copies an embedded store into a three-node cluster:
// the configuration, the events above the router's acknowledgement floor
// (not those below it), jobs due and delayed, queue messages with their send
// times and a working queue consumer, and the attempt log. A second
// migration into the same cluster is refused.
func TestMigrateStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	ctx := context.Background()
	from := open(t, t.TempDir())
	defer from.Close()
	if _, err := from.Create(ctx, "bus.a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := from.AppendEvents(ctx, []Event{{ID: "e1", Bus: "default", Ingested: now, Data: []byte(`{}`)},
		{ID: "e2", Bus: "default", Ingested: now, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	// The router acknowledges the first two events, then stops.
	routeAll(t, from, 2)
	if err := from.AppendEvents(ctx, []Event{{ID: "e3", Bus: "default", Ingested: now, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	job := Job{EventID: "e1", Bus: "default", RuleArn: "arn:rule", TargetID: "t", Ingested: now, Event: []byte(`{}`)}
	if err := from.AppendJobs(ctx, []Job{job}); err != nil {
		t.Fatal(err)
	}
	job0 := job
	// Three jobs the router queued as a batch.
	routed := batchOf(1, 3, 10)
	if err := from.AppendRouted(ctx, routed, nil, true); err != nil {
		t.Fatal(err)
	}
	job.Attempt = 1
	if err := from.Delay(ctx, job, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := from.OpenQueue(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	sending := time.Now()
	if _, _, err := from.SendToQueue(ctx, "q1", QueueMessage{ID: "m1", Data: []byte("body")}); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	from.LogAttempt(Attempt{Time: now, EventID: "e1", RuleArn: "arn:rule", TargetID: "t", Attempt: 1, Outcome: OutcomeDelivered})
	// The attempt log is written in the background.
	waitFor(t, "the attempt logged", func() bool {
		a, err := from.Attempts(ctx, AttemptFilter{EventID: "e1"})
		return err == nil && len(a) == 1
	})

	to, err := Open(ctx, Config{URL: strings.Join(natstest.Cluster(t, 3), ",")})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	var parts []string
	st, err := Migrate(ctx, from, to, MigrateOptions{Progress: func(p string) { parts = append(parts, p) }})
	if err != nil {
		t.Fatal(err)
	}
	want := MigrateStats{Records: 1, Events: 1, Jobs: 4, Delayed: 1, QueueMessages: 1, Attempts: 1}
	if st != want {
		t.Errorf("copied %+v, want %+v", st, want)
	}
	if len(parts) == 0 {
		t.Error("no progress reported")
	}
	if queued, err := to.QueuedJobs(ctx, 10); err != nil || !sameJobs(queued, append([]Job{job0}, routed...)) {
		t.Errorf("jobs in the cluster: %d, %v", len(queued), err)
	}
	if e, err := to.Get(ctx, "bus.a"); err != nil || string(e.Value) != "a" {
		t.Errorf("record in the cluster: %+v, %v", e, err)
	}
	got := receiveAll(t, to, "q1", ReceiveOptions{Max: 10, Wait: 20 * time.Second, Visibility: 30 * time.Second})
	if len(got) != 1 || string(got[0].Data) != "body" || got[0].ID != "m1" {
		t.Fatalf("queue message in the cluster: %+v", got)
	}
	if got[0].Sent.Before(sending) || got[0].Sent.After(sent) {
		t.Errorf("the copy's send time %v is not the original's (between %v and %v)", got[0].Sent, sending, sent)
	}
	if _, err := Migrate(ctx, from, to, MigrateOptions{}); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("second migration: %v", err)
	}
	// With Replace, what the target held goes first: the same copy again.
	if st, err := Migrate(ctx, from, to, MigrateOptions{Replace: true}); err != nil || st != want {
		t.Errorf("migration with Replace: %+v, %v; want %+v", st, err, want)
	}
	if got := receiveAll(t, to, "q1", ReceiveOptions{Max: 10, Wait: 20 * time.Second, Visibility: 30 * time.Second}); len(got) != 1 {
		t.Errorf("after the migration with Replace, the queue holds %d messages, want 1", len(got))
	}
}
