package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TestRedrive drives `bridgeport redrive` against a server as a user would:
// events for a queue target whose policy refuses EventBridge land in the
// dead-letter queue; once the policy is fixed, redrive delivers them, with
// the filters and limits it offers.
func TestRedrive(t *testing.T) {
	t.Parallel()
	srv := runUserServer(t, "AKIAREDRIVETEST00000", "redrive-test-secret-0000000000000000000")
	ctx := context.Background()
	base, eb, sq, getenv := srv.base, srv.eb, srv.sq, srv.getenv

	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`
	mkQueue := func(name string, attrs map[string]string) string {
		out, err := sq.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	inbox := mkQueue("inbox", nil) // no policy yet: EventBridge may not send
	dlq := mkQueue("dlq", map[string]string{"Policy": allow})
	for _, r := range []string{"r1", "r2"} {
		if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(r), EventPattern: aws.String(`{"source":["` + r + `"]}`)}); err != nil {
			t.Fatal(err)
		}
		out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(r), Targets: []types.Target{{Id: aws.String("q"),
			Arn:              aws.String("arn:aws:sqs:us-east-1:000000000000:inbox"),
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:dlq")}}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutTargets: %+v, %v", out, err)
		}
	}
	var ids []string
	for _, src := range []string{"r1", "r1", "r1", "r2"} {
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String(src),
			DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
		ids = append(ids, aws.ToString(out.Entries[0].EventId))
	}
	waitCount(t, sq, dlq, 4)

	run := func(args ...string) (int, string) {
		var out, errOut syncBuffer
		code := redrive(ctx, append([]string{"--endpoint", base}, args...), &out, &errOut, getenv)
		return code, out.String() + errOut.String()
	}
	// A dry run changes nothing.
	code, out := run("--queue-url", dlq, "--rule", "r1", "--dry-run")
	if code != 0 || !strings.Contains(out, "3 would be redriven, 1 skipped, 0 not redriven") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	waitCount(t, sq, dlq, 4)

	if _, err := sq.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(inbox), Attributes: map[string]string{"Policy": allow}}); err != nil {
		t.Fatal(err)
	}
	code, out = run("--queue-url", dlq, "--rule", "arn:aws:events:us-east-1:000000000000:rule/r1", "--max", "2", "--error-code", "NO_PERMISSIONS")
	if code != 0 || !strings.Contains(out, "2 redriven (2 delivered, 0 failed again, 0 not finished), ") {
		t.Fatalf("redrive --max 2: %d %s", code, out)
	}
	waitCount(t, sq, dlq, 2)
	code, out = run("--queue-url", dlq, "--rate", "50")
	if code != 0 || !strings.Contains(out, "2 redriven (2 delivered, 0 failed again, 0 not finished), 0 skipped, 0 not redriven") {
		t.Fatalf("redrive all: %d %s", code, out)
	}
	waitCount(t, sq, dlq, 0)

	// Every event reached the inbox once.
	var got []string
	deadline := time.Now().Add(time.Minute)
	for len(got) < 4 && time.Now().Before(deadline) {
		r, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(inbox), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Messages {
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.ID)
		}
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("inbox got events %v, want %v", got, ids)
	}
	// A bad queue URL is an error.
	if code, out := run("--queue-url", base+"/000000000000/nope"); code != 1 || !strings.Contains(out, "The specified queue does not exist.") {
		t.Errorf("missing queue: %d %s", code, out)
	}
}

// waitCount waits until the queue holds n messages, visible or not.
func waitCount(t *testing.T, sq *awssqs.Client, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		out, err := sq.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
		if err != nil {
			t.Fatal(err)
		}
		last = fmt.Sprint(out.Attributes)
		if out.Attributes["ApproximateNumberOfMessages"] == fmt.Sprint(n) && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("queue %s: %s, want %d messages", url, last, n)
}

// hookRoute creates rule "hook": every event with source "hook" goes to an
// API destination at url, dead-lettered to queue "hook-dlq", whose URL it
// returns.
func hookRoute(t *testing.T, srv *userServer, key, secret, url string) string {
	t.Helper()
	ctx := context.Background()
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`
	q, err := srv.sq.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("hook-dlq"), Attributes: map[string]string{"Policy": allow}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := srv.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeApiKey,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &types.CreateConnectionApiKeyAuthRequestParameters{
			ApiKeyName: aws.String("x-key"), ApiKeyValue: aws.String("k")}}})
	if err != nil {
		t.Fatal(err)
	}
	dest, err := srv.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(url), HttpMethod: types.ApiDestinationHttpMethodPost, InvocationRateLimitPerSecond: aws.Int32(100000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("hook"), EventPattern: aws.String(`{"source":["hook"]}`)}); err != nil {
		t.Fatal(err)
	}
	out, err := srv.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("hook"), Targets: []types.Target{{Id: aws.String("d"),
		Arn: dest.ApiDestinationArn, RoleArn: invokeRole(t, srv.base, key, secret),
		DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:hook-dlq")}}}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %+v, %v", out, err)
	}
	return aws.ToString(q.QueueUrl)
}

// putHookEvents puts n events for rule "hook" and returns their ids.
func putHookEvents(t *testing.T, eb *eventbridge.Client, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i += 10 {
		var entries []types.PutEventsRequestEntry
		for j := i; j < min(i+10, n); j++ {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("hook"), DetailType: aws.String("x"), Detail: aws.String(fmt.Sprintf(`{"n":%d}`, j))})
		}
		out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: entries})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
		for _, e := range out.Entries {
			ids = append(ids, aws.ToString(e.EventId))
		}
	}
	return ids
}

// eventID is the id of the event in an invocation's or a message's body.
func eventID(t *testing.T, body []byte) string {
	t.Helper()
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return ev.ID
}

// TestRedriveBounded: a redrive of 1,000 letters whose target still
// answers 400 takes each letter once: the endpoint sees 1,000 attempts,
// every event goes back to the dead-letter queue once, with the attributes
// of its new failure, and the run ends by itself, saying so.
func TestRedriveBounded(t *testing.T) {
	t.Parallel()
	const key, secret, n = "AKIAREDRIVEBOUNDED00", "redrive-bounded-secret-000000000000000", 1000
	srv := runUserServer(t, key, secret, "--allow-private-endpoints", "--allow-http-endpoints")
	var attempts, round atomic.Int64
	round.Store(1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "round %d", round.Load())
	}))
	defer hook.Close()
	dlq := hookRoute(t, srv, key, secret, hook.URL)
	ids := putHookEvents(t, srv.eb, n)
	waitCount(t, srv.sq, dlq, n)
	if got := attempts.Load(); got != n {
		t.Fatalf("the endpoint saw %d attempts before the redrive, want %d", got, n)
	}

	round.Store(2)
	var out, errOut syncBuffer
	// The bound only catches a run that does not end by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	code := redrive(ctx, []string{"--endpoint", srv.base, "--queue-url", dlq}, &out, &errOut, srv.getenv)
	t.Logf("the run took %v", time.Since(began).Round(time.Millisecond))
	summary := fmt.Sprintf("%d redriven (0 delivered, %d failed again, 0 not finished), 0 skipped, 0 not redriven", n, n)
	if code != 1 || !strings.Contains(out.String(), summary) {
		t.Fatalf("redrive: exit %d, want 1 and %q\n%s", code, summary, tail(out.String()+errOut.String(), 20))
	}
	if got := attempts.Load(); got != 2*n {
		t.Errorf("the endpoint saw %d attempts during the redrive, want %d", got-n, n)
	}
	waitCount(t, srv.sq, dlq, n)
	// Each event is back once, dead-lettered by its second failure.
	back := map[string]int{}
	for len(back) < n {
		r, err := srv.sq.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, VisibilityTimeout: 600, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			break
		}
		for _, m := range r.Messages {
			back[eventID(t, []byte(aws.ToString(m.Body)))]++
			if msg := aws.ToString(m.MessageAttributes["ERROR_MESSAGE"].StringValue); !strings.HasSuffix(msg, "round 2") {
				t.Fatalf("a letter's ERROR_MESSAGE is %q, want its second failure's", msg)
			}
		}
	}
	for _, id := range ids {
		if back[id] != 1 {
			t.Fatalf("event %s is in the dead-letter queue %d times, want once (%d events back)", id, back[id], len(back))
		}
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestRedriveRetried: events redriven to a target that answers 5xx are
// retried on their retry policy; the run does not wait for a schedule
// that can take a day: it reports them as not finished after --wait
// without an outcome, and exits 3. Events whose retry succeeds within the
// wait count as delivered.
func TestRedriveRetried(t *testing.T) {
	t.Parallel()
	const key, secret = "AKIAREDRIVERETRIED00", "redrive-retried-secret-000000000000000"
	srv := runUserServer(t, key, secret, "--allow-private-endpoints", "--allow-http-endpoints")
	var mu sync.Mutex
	mode := "refuse"
	tried := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		id := ev.ID
		mu.Lock()
		defer mu.Unlock()
		switch {
		case mode == "refuse":
			w.WriteHeader(http.StatusBadRequest)
		case mode == "unavailable", !tried[id]: // "flaky": the first attempt fails
			tried[id] = true
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer hook.Close()
	dlq := hookRoute(t, srv, key, secret, hook.URL)
	putHookEvents(t, srv.eb, 4)
	waitCount(t, srv.sq, dlq, 4)
	run := func(m string, args ...string) (int, string) {
		mu.Lock()
		mode = m
		mu.Unlock()
		var out, errOut syncBuffer
		code := redrive(context.Background(), append([]string{"--endpoint", srv.base, "--queue-url", dlq}, args...), &out, &errOut, srv.getenv)
		return code, out.String() + errOut.String()
	}
	code, out := run("unavailable", "--max", "2", "--wait", "2s")
	if code != 3 || !strings.Contains(out, "2 redriven (0 delivered, 0 failed again, 2 not finished), 2 skipped, 0 not redriven") ||
		strings.Count(out, "not finished: event ") != 2 {
		t.Fatalf("redrive to an unavailable target: exit %d\n%s", code, out)
	}
	waitCount(t, srv.sq, dlq, 2)
	code, out = run("flaky")
	if code != 0 || !strings.Contains(out, "2 redriven (2 delivered, 0 failed again, 0 not finished), 0 skipped, 0 not redriven") {
		t.Fatalf("redrive to a target that answers on its retry: exit %d\n%s", code, out)
	}
}
