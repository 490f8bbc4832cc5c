package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// TestReplayKilledFinishes kills the node running a replay with SIGKILL
// half-way through, starts it again on the same data directory, and
// checks that the replay finishes (COMPLETED, not stuck in RUNNING), that
// every archived event in its window was replayed, and that the only
// events sent twice are those whose deliveries the kill cut short (a
// crash's at-least-once duplicates), not the events replayed before the
// replay's last recorded progress.
func TestReplayKilledFinishes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	const events = 6000
	var mu sync.Mutex
	live, replayed := map[string]int{}, map[string]int{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID     string `json:"id"`
			Replay string `json:"replay-name"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		if ev.Replay != "" {
			// Replayed deliveries take a little while, so that the
			// replay (held to its lane's backlog) is still running when
			// the node is killed, on any machine.
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if ev.Replay != "" {
			replayed[ev.ID]++
		} else {
			live[ev.ID]++
		}
	}))
	t.Cleanup(sink.Close)
	count := func(m map[string]int) (n, dup int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range m {
			n++
			dup += c - 1
		}
		return n, dup
	}

	dir := t.TempDir()
	c := startChildWith(t, dir, "--replay-backlog 100")
	ctx := context.Background()
	eb := c.client()
	routeToSink(t, c, "all", "replay", sink.URL, 100000)
	if _, err := eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("all"),
		EventSourceArn: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/default")}); err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(-time.Minute)
	for i := 0; i < events; i += 10 {
		var entries []types.PutEventsRequestEntry
		for j := range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("replay"), DetailType: aws.String("t"),
				Detail: aws.String(fmt.Sprintf(`{"i":%d}`, i+j))})
		}
		if out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries}); err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
	}
	waitUntil(t, "the archive holds every event", func() bool {
		a, err := eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("all")})
		return err == nil && a.EventCount == events
	})
	if _, err := eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String("r"),
		EventSourceArn: aws.String("arn:aws:events:us-east-1:000000000000:archive/all"),
		EventStartTime: aws.Time(from), EventEndTime: aws.Time(time.Now().Add(time.Minute)),
		Destination: &types.ReplayDestination{Arn: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/default")}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a tenth of the events replayed", func() bool { n, _ := count(replayed); return n >= events/10 })
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	atKill, _ := count(replayed)
	if atKill >= events {
		t.Fatalf("the replay was over (%d events) before the kill; the test proves nothing", atKill)
	}
	c = startChildWith(t, dir, "--replay-backlog 100")
	defer c.stop()
	eb = c.client()
	waitUntil(t, "the replay COMPLETED", func() bool {
		r, err := eb.DescribeReplay(ctx, &eventbridge.DescribeReplayInput{ReplayName: aws.String("r")})
		if err == nil && (r.State == types.ReplayStateFailed || r.State == types.ReplayStateCancelled) {
			t.Fatalf("replay ended %s: %s", r.State, aws.ToString(r.StateReason))
		}
		return err == nil && r.State == types.ReplayStateCompleted
	})
	waitUntil(t, "every event replayed", func() bool { n, _ := count(replayed); return n == events })
	n, dup := count(replayed)
	// A kill repeats at most the batch of events (256) the replay stored
	// after its last progress write, of which only those already
	// delivered (the others are dropped as duplicates), and the
	// deliveries in flight, whose jobs were not acknowledged: at most
	// the replay lane's 8 workers.
	if dup > 256+8 {
		t.Errorf("%d duplicate replayed deliveries, more than the deliveries a kill can cut short", dup)
	}
	if _, ldup := count(live); ldup > 0 {
		t.Logf("%d duplicate live deliveries", ldup)
	}
	a, err := eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("all")})
	if err != nil || a.EventCount != events {
		t.Errorf("archive after the replay: %+v, %v (replayed events are not archived)", a, err)
	}
	t.Logf("killed with %d of %d events replayed; after the restart all %d replayed, %d twice", atKill, events, n, dup)
}

// waitUntil polls cond until it holds, failing the test when it has not
// held for two minutes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not in 2 minutes: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// routeToSink creates rule, which sends every event of source,
// untransformed, to url: an API destination with a BASIC connection and
// the rate limit given.
func routeToSink(t *testing.T, c *child, rule, source, url string, rate int32) {
	t.Helper()
	ctx := context.Background()
	eb := c.client()
	conn, err := eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	if err != nil {
		t.Fatal(err)
	}
	dest, err := eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(url), HttpMethod: types.ApiDestinationHttpMethodPost, InvocationRateLimitPerSecond: aws.Int32(rate)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventPattern: aws.String(`{"source":["` + source + `"]}`)}); err != nil {
		t.Fatal(err)
	}
	if out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), Targets: []types.Target{
		{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: invokeRole(t, c.addr, crashKey, crashSecret)}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %+v, %v", out, err)
	}
}
