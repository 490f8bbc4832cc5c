package server

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"bridgeport/internal/config"
)

// deliveryEnv is a server with fast retries, a sink, and one rule sending
// every "t" event to the sink through a BASIC connection.
type deliveryEnv struct {
	*env
	sink *sink
	logs *syncWriter
	conn string
}

func setupDelivery(t *testing.T, status func(n int) int, retry *types.RetryPolicy, opts ...func(*config.Config)) *deliveryEnv {
	t.Helper()
	d := &deliveryEnv{env: &env{t: t, dir: t.TempDir()}, sink: newSink(t), logs: &syncWriter{}}
	d.sink.status = status
	d.cfg = testConfig(d.dir)
	d.cfg.AllowPrivateEndpoints = true
	d.cfg.RootCAs = d.sink.roots()
	d.cfg.RetryBaseDelay, d.cfg.RetryMaxDelay = 20*time.Millisecond, 100*time.Millisecond
	for _, o := range opts {
		o(&d.cfg)
	}
	srv, err := Start(ctx, d.cfg, slog.New(slog.NewJSONHandler(d.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.srv = srv
	d.env.eb = newClient(srv)
	t.Cleanup(d.stop)
	conn, err := d.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	if err != nil {
		t.Fatal(err)
	}
	d.conn = aws.ToString(conn.ConnectionArn)
	dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(d.sink.URL + "/hook"), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["t"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole(),
		RetryPolicy: retry, InputTransformer: &types.InputTransformer{InputPathsMap: map[string]string{"n": "$.detail.n"}, InputTemplate: aws.String(`{"n": <n>, "rule": <aws.events.rule-name>}`)}}}}); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *deliveryEnv) put() {
	d.t.Helper()
	d.putID()
}

// putID puts one "t" event and returns its id.
func (d *deliveryEnv) putID() string {
	d.t.Helper()
	out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(`{"n":5}`)}}})
	if err != nil || out.FailedEntryCount != 0 {
		d.t.Fatalf("PutEvents: %+v %v", out, err)
	}
	return aws.ToString(out.Entries[0].EventId)
}

// deadLetters waits for n dead-letter log lines and returns them.
func (d *deliveryEnv) deadLetters(n int) []map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var out []map[string]any
		for _, line := range strings.Split(d.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "event not delivered; dropped" {
				out = append(out, m)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				d.t.Fatalf("%d dead letters, want %d", len(out), n)
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newClient(srv *Server) *eventbridge.Client {
	return eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String("http://" + srv.Addr()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, ""), RetryMaxAttempts: 1})
}

func TestDeliveryRetriesThenDeadLetters(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 503 }, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(600)})
	d.put()
	dl := d.deadLetters(1)[0]
	if dl["error_code"] != "ERROR_FROM_TARGET" || dl["exhausted"] != "MaximumRetryAttempts" || dl["retry_attempts"] != float64(2) {
		t.Errorf("dead letter %v", dl)
	}
	got := d.sink.received()
	if len(got) != 3 {
		t.Fatalf("%d calls, want 3 (one attempt and two retries)", len(got))
	}
	if got[0].body != `{"n": 5, "rule": "r"}` {
		t.Errorf("transformed body %s", got[0].body)
	}
}

func TestDeliveryRecovers(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(n int) int {
		if n < 3 {
			return []int{500, 429, 409}[n]
		}
		return 200
	}, nil)
	d.put()
	d.sink.wait(t, 4)
	time.Sleep(300 * time.Millisecond)
	if n := len(d.sink.received()); n != 4 {
		t.Errorf("%d calls after success, want 4", n)
	}
	if d.srv.Dropped() != 0 {
		t.Errorf("%d dropped", d.srv.Dropped())
	}
}

func TestDeliveryNotRetried(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 404 }, nil)
	d.put()
	dl := d.deadLetters(1)[0]
	if dl["error_code"] != "ERROR_FROM_TARGET" || dl["exhausted"] != "" || dl["retry_attempts"] != float64(0) || !strings.Contains(dl["error"].(string), "404") {
		t.Errorf("dead letter %v", dl)
	}
	if n := len(d.sink.received()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestDeliveryDeauthorizes checks that a 401 to a BASIC connection
// deauthorizes it, and that its destination then fails without a call.
func TestDeliveryDeauthorizes(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 401 }, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(5), MaximumEventAgeInSeconds: aws.Int32(600)})
	d.put()
	dl := d.deadLetters(1)[0]
	if dl["error_code"] != "INVALID_PARAMETER" || !strings.Contains(dl["error"].(string), "DEAUTHORIZED") {
		t.Errorf("dead letter %v", dl)
	}
	if n := len(d.sink.received()); n != 1 {
		t.Errorf("%d calls, want 1: the retry must not call an INACTIVE destination", n)
	}
	c, err := d.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("c")})
	if err != nil || c.ConnectionState != types.ConnectionStateDeauthorized || !strings.Contains(aws.ToString(c.StateReason), "401") {
		t.Errorf("connection %+v, %v", c, err)
	}
	dest, _ := d.eb.DescribeApiDestination(ctx, &eventbridge.DescribeApiDestinationInput{Name: aws.String("d")})
	if dest.ApiDestinationState != types.ApiDestinationStateInactive {
		t.Errorf("destination %s", dest.ApiDestinationState)
	}
}

func TestDeliveryNegativeRetryAfter(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 429 }, nil)
	d.sink.Config.Handler = wrapHeader(d.sink.Config.Handler, "Retry-After", "-1")
	d.put()
	dl := d.deadLetters(1)[0]
	if dl["error_code"] != "THROTTLING" || len(d.sink.received()) != 1 {
		t.Errorf("dead letter %v after %d calls", dl, len(d.sink.received()))
	}
}

// TestBusTargets sends events from one bus to another, whose rule delivers
// them, and checks that the second bus does not send them on to a third.
func TestBusTargets(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil)
	for _, b := range []string{"second", "third"} {
		if _, err := d.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	arn := func(b string) *string { return aws.String("arn:aws:events:us-east-1:000000000000:event-bus/" + b) }
	// default --fwd--> second --fwd--> third, and second --> the sink.
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("fwd"), EventPattern: aws.String(`{"source":["bus"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("fwd"), Targets: []types.Target{{Id: aws.String("b"), Arn: arn("second")}}}); err != nil {
		t.Fatal(err)
	}
	dest, _ := d.eb.DescribeApiDestination(ctx, &eventbridge.DescribeApiDestinationInput{Name: aws.String("d")})
	// The bus target has no role: EventBridge needs none for a bus of the
	// same account and region.
	for _, r := range []struct {
		name, target string
		role         *string
	}{{"on", aws.ToString(dest.ApiDestinationArn), d.invokeRole()}, {"again", aws.ToString(arn("third")), nil}} {
		if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(r.name), EventBusName: aws.String("second"), EventPattern: aws.String(`{"source":["bus"]}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(r.name), EventBusName: aws.String("second"), Targets: []types.Target{{Id: aws.String("x"), Arn: aws.String(r.target), RoleArn: r.role}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A rule on the third bus would deliver too, if anything reached it.
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("third"), EventBusName: aws.String("third"), EventPattern: aws.String(`{"source":["bus"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("third"), EventBusName: aws.String("third"), Targets: []types.Target{{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole()}}}); err != nil {
		t.Fatal(err)
	}
	out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("bus"), DetailType: aws.String("x"), Detail: aws.String(`{"n":1}`)}}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatal(out, err)
	}
	got := d.sink.wait(t, 1)
	var env map[string]any
	_ = json.Unmarshal([]byte(got[0].body), &env)
	if env["id"] != aws.ToString(out.Entries[0].EventId) || env["source"] != "bus" {
		t.Errorf("forwarded event %s", got[0].body)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(d.sink.received()); n != 1 {
		t.Errorf("%d deliveries, want 1: the event went on to a third bus", n)
	}
}

// TestRateLimit puts more events than a destination's rate allows in a
// second: they wait and all arrive, none is dropped.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil)
	if _, err := d.eb.UpdateApiDestination(ctx, &eventbridge.UpdateApiDestinationInput{Name: aws.String("d"), InvocationRateLimitPerSecond: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		var entries []types.PutEventsRequestEntry
		for range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(`{"n":1}`)})
		}
		if out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries}); err != nil || out.FailedEntryCount != 0 {
			t.Fatal(out, err)
		}
	}
	// A burst of 10, then 10 a second: 30 events take two seconds.
	checkRate(t, d.sink.wait(t, 30), start, 10)
	if d.srv.Dropped() != 0 {
		t.Errorf("%d dropped", d.srv.Dropped())
	}
}

// TestDeadTargetDoesNotBlock sends events to a target that never answers
// and to a healthy one: the healthy one gets all of its events while the
// dead one's calls hang. The invocation timeout is an hour here, so the
// dead calls hang until the test ends, however slow the machine: if they
// blocked the healthy target, its events would never arrive.
func TestDeadTargetDoesNotBlock(t *testing.T) {
	t.Parallel()
	deadTargetsDoNotBlock(t, 1, 100)
}

// TestManyDeadTargetsDoNotBlock: the same with 40 destinations that never
// answer, each sent more events than its 16 calls in flight: together they
// could take 640 calls, more than the 512 delivery workers. Calls to
// destinations that have not answered lately get at most half the
// workers; the rest of their events wait parked, and the healthy target
// is served.
func TestManyDeadTargetsDoNotBlock(t *testing.T) {
	t.Parallel()
	deadTargetsDoNotBlock(t, 40, 30)
}

func deadTargetsDoNotBlock(t *testing.T, targets, events int) {
	d := directEnv(t)
	var mu sync.Mutex
	hanging, ended := 0, 0
	release := make(chan struct{})
	// Reached over plain HTTP, as the server trusts only the healthy sink's
	// certificate.
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // so that a caller hanging up cancels r.Context()
		mu.Lock()
		hanging++
		mu.Unlock()
		select {
		case <-r.Context().Done(): // the caller gave up
			mu.Lock()
			ended++
			mu.Unlock()
		case <-release:
		}
	}))
	defer func() {
		close(release)
		dead.Close()
	}()
	for i := range targets {
		name := fmt.Sprintf("dead-%d", i)
		dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String(name), ConnectionArn: aws.String(d.conn),
			InvocationEndpoint: aws.String(dead.URL + "/" + name), HttpMethod: types.ApiDestinationHttpMethodPost})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(`{"source":["` + name + `"]}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name), Targets: []types.Target{{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole()}}}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(source string, n int) {
		for range n / 10 {
			var entries []types.PutEventsRequestEntry
			for range 10 {
				entries = append(entries, types.PutEventsRequestEntry{Source: aws.String(source), DetailType: aws.String("x"), Detail: aws.String(`{"n":1}`)})
			}
			if out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries}); err != nil || out.FailedEntryCount != 0 {
				t.Fatal(out, err)
			}
		}
	}
	for i := range targets {
		put(fmt.Sprintf("dead-%d", i), events)
	}
	// The dead targets are being called before the healthy one's events
	// go in, and none of their calls ends while they are delivered.
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return hanging >= min(targets*min(events, 16), 256)/2 // 16 calls in flight a destination
	})
	put("t", 30)
	d.sink.wait(t, 30)
	mu.Lock()
	defer mu.Unlock()
	if ended > 0 {
		t.Errorf("%d calls to the dead targets ended before the test let them", ended)
	}
	t.Logf("the healthy target's 30 events delivered while %d calls to %d dead targets hung", hanging, targets)
}

// TestDeliveryEventTooOld ages the event past MaximumEventAgeInSeconds while
// its first attempt fails: it is dead-lettered with that condition instead
// of retried.
func TestDeliveryEventTooOld(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64
	d := &deliveryEnv{env: &env{t: t, dir: t.TempDir()}, sink: newSink(t), logs: &syncWriter{}}
	d.sink.status = func(int) int {
		skew.Store(int64(61 * time.Second)) // the clock jumps while the target answers
		return 503
	}
	d.cfg = testConfig(d.dir)
	d.cfg.AllowPrivateEndpoints = true
	d.cfg.RootCAs = d.sink.roots()
	d.cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	srv, err := Start(ctx, d.cfg, slog.New(slog.NewJSONHandler(d.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.srv, d.eb = srv, newClient(srv)
	t.Cleanup(d.stop)
	conn, _ := d.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(d.sink.URL), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["t"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole(),
		RetryPolicy: &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(60)}}}}); err != nil {
		t.Fatal(err)
	}
	d.put()
	dl := d.deadLetters(1)[0]
	if dl["exhausted"] != "MaximumEventAgeInSeconds" || dl["retry_attempts"] != float64(0) || len(d.sink.received()) != 1 {
		t.Errorf("dead letter %v after %d calls", dl, len(d.sink.received()))
	}
}

// restartDelivery starts the stopped server again on the same data
// directory, with the same logs.
func (d *deliveryEnv) restartDelivery() {
	d.t.Helper()
	srv, err := Start(ctx, d.cfg, slog.New(slog.NewJSONHandler(d.logs, nil)))
	if err != nil {
		d.t.Fatal(err)
	}
	d.srv, d.eb = srv, newClient(srv)
}
