package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strconv"
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
	"github.com/aws/smithy-go"

	"bridgeport/internal/admin"
	"bridgeport/internal/config"
	"bridgeport/internal/natstest"
)

// testClock is the clock schedules run by in these tests: the real one,
// moved to a chosen time, so that due times come in seconds.
type testClock struct{ skew atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }

// set makes the clock read t now; it goes on from there.
func (c *testClock) set(t time.Time) { c.skew.Store(int64(time.Until(t))) }

// real returns the real time at which the clock reads t.
func (c *testClock) real(t time.Time) time.Time { return t.Add(-time.Duration(c.skew.Load())) }

// scheduleNode is a server whose schedules run by clk, with the sink's
// certificate trusted; url is a NATS server or "" for the embedded one.
func scheduleNode(t *testing.T, url string, target *sink, clk *testClock, opts ...func(*config.Config)) *env {
	t.Helper()
	e := newClusterNode(t, url, target)
	e.cfg.ScheduleNow = clk.now
	for _, o := range opts {
		o(&e.cfg)
	}
	e.start()
	return e
}

// scheduleTo creates rule name with a schedule (and pattern, if not "")
// whose target is the API destination dest.
func (e *env) scheduleTo(name, expr, pattern, dest string, state types.RuleState) string {
	e.t.Helper()
	in := &eventbridge.PutRuleInput{Name: aws.String(name), ScheduleExpression: aws.String(expr), State: state}
	if pattern != "" {
		in.EventPattern = aws.String(pattern)
	}
	out, err := e.eb.PutRule(ctx, in)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name), Targets: []types.Target{{Id: aws.String("x"),
		Arn: aws.String(dest), RoleArn: e.invokeRole()}}}); err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.RuleArn)
}

// destination creates a basic-auth connection and an API destination
// named name at the sink's path, and returns its ARN.
func (e *env) destination(target *sink, name, path string) string {
	e.t.Helper()
	conn, err := e.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String(name), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	if err != nil {
		e.t.Fatal(err)
	}
	dest, err := e.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String(name), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(target.URL + path), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(dest.ApiDestinationArn)
}

// scheduled is a Scheduled Event as a target receives it.
type scheduled struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
	path       string
	at         time.Time
}

// firings returns the scheduled events the sink got, by path and time.
func firings(t *testing.T, got []received) map[string][]scheduled {
	t.Helper()
	out := map[string][]scheduled{}
	for _, r := range got {
		var ev scheduled
		if err := json.Unmarshal([]byte(r.body), &ev); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		if ev.Source != "aws.events" {
			continue
		}
		ev.path, ev.at = r.path, r.at
		out[r.path+" "+ev.Time] = append(out[r.path+" "+ev.Time], ev)
	}
	return out
}

func TestScheduleExpressions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if _, err := e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("custom")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in  eventbridge.PutRuleInput
		msg string
	}{
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("rate(1 minutes)")}, "Parameter ScheduleExpression is not valid."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("rate(0 minutes)")}, "Parameter ScheduleExpression is not valid."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("rate(10 seconds)")}, "Parameter ScheduleExpression is not valid."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("cron(0 12 * * * *)")}, "Parameter ScheduleExpression is not valid."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("cron(0 12 * * ?)")}, "Parameter ScheduleExpression is not valid."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("cron(0 12 * * ? 2200)")}, "Parameter ScheduleExpression is not valid."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("at(2030-01-01T00:00:00)")}, "Parameter ScheduleExpression is not valid."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("rate(5 minutes)"), EventBusName: aws.String("custom")},
			"ScheduleExpression is supported only on the default event bus."},
		{eventbridge.PutRuleInput{Name: aws.String("s"), ScheduleExpression: aws.String("rate(5 minutes)"), EventPattern: aws.String(`{"source":["a"]}`),
			EventBusName: aws.String("custom")}, "ScheduleExpression is supported only on the default event bus."},
	} {
		_, err := e.eb.PutRule(ctx, &c.in)
		apiError(t, err, "ValidationException", c.msg)
	}
	if out, _ := e.eb.ListRules(ctx, &eventbridge.ListRulesInput{}); len(out.Rules) != 0 {
		t.Fatalf("refused rules were stored: %+v", out.Rules)
	}
	for name, expr := range map[string]string{"a": "rate(1 minute)", "b": "rate(12 hours)", "c": "cron(0/15 8-17 ? * MON-FRI *)",
		"d": "cron(0 0 LW * ? *)", "e": "cron(15 10 ? * 6L 2002-2005)"} {
		if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), ScheduleExpression: aws.String(expr)}); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		d, err := e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name)})
		if err != nil || aws.ToString(d.ScheduleExpression) != expr || d.EventPattern != nil || d.State != types.RuleStateEnabled {
			t.Fatalf("DescribeRule %s: %+v, %v", name, d, err)
		}
	}
	// A pattern and a schedule on one rule, as AWS allows.
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("f"), ScheduleExpression: aws.String("rate(5 minutes)"),
		EventPattern: aws.String(`{"source":["a"]}`), Description: aws.String("both")}); err != nil {
		t.Fatal(err)
	}
	out, err := e.eb.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String("f")})
	if err != nil || len(out.Rules) != 1 || aws.ToString(out.Rules[0].ScheduleExpression) != "rate(5 minutes)" || aws.ToString(out.Rules[0].EventPattern) == "" {
		t.Fatalf("ListRules: %+v, %v", out, err)
	}
	// PutRule replaces the rule: without a schedule, it has none.
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("f"), EventPattern: aws.String(`{"source":["a"]}`)}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("f")}); d.ScheduleExpression != nil {
		t.Fatalf("schedule kept: %+v", d)
	}
}

// TestScheduledRulesFire runs schedules on a clock set 15 s before a
// minute: an enabled schedule fires at the minute, once, with EventBridge's
// Scheduled Event, to its own targets only; a disabled one is silent; a
// rule with a pattern and a schedule gets both.
func TestScheduledRulesFire(t *testing.T) {
	t.Parallel()
	clk := &testClock{}
	minute := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	clk.set(minute.Add(-15 * time.Second))
	s := newSink(t)
	e := scheduleNode(t, "", s, clk)
	dest := e.destination(s, "d", "/")
	every := e.scheduleTo("every", "cron(* * * * ? *)", "", e.destination(s, "every", "/every"), types.RuleStateEnabled)
	e.scheduleTo("off", "cron(* * * * ? *)", "", e.destination(s, "off", "/off"), types.RuleStateDisabled)
	both := e.scheduleTo("both", "cron(* * * * ? *)", `{"source":["t"]}`, e.destination(s, "both", "/both"), types.RuleStateEnabled)
	// A rule that matches everything on the bus does not get the
	// scheduled events: they are not put on the bus.
	e.scheduleTo("all", "cron(0 0 1 1 ? 2099)", `{"version":["0"]}`, dest, types.RuleStateEnabled)
	if clk.now().After(minute) {
		t.Logf("setting up took until %s: the test waits for the next minute", clk.now().Format(time.TimeOnly))
		minute = clk.now().Truncate(time.Minute).Add(time.Minute)
	}
	if out, err := e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("t"),
		DetailType: aws.String("x"), Detail: aws.String(`{}`)}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %+v, %v", out, err)
	}
	due := minute.Format(time.RFC3339)
	got := s.waitUntil(t, func(got []received) (bool, string) {
		f := firings(t, got)
		return len(f["/every "+due]) > 0 && len(f["/both "+due]) > 0, fmt.Sprintf("%d scheduled events arrived", len(f))
	})
	f := firings(t, got)
	ev := f["/every "+due][0]
	late := ev.at.Sub(clk.real(minute))
	t.Logf("the %s due time reached its target %s after it", due, late.Round(time.Millisecond))
	// The fire is on time (milliseconds on a quiet machine); on a busy
	// one the delivery after it waits its turn, so only a fire missed by
	// a long way (a scheduler asleep past its due time) fails the test.
	if late > 20*time.Second || late < 0 {
		t.Errorf("fired %s after the due time", late)
	}
	if ev.Version != "0" || ev.DetailType != "Scheduled Event" || ev.Account != "000000000000" || ev.Region != "us-east-1" ||
		len(ev.Resources) != 1 || ev.Resources[0] != every || string(ev.Detail) != "{}" || len(ev.ID) != 36 {
		t.Errorf("scheduled event: %+v", ev)
	}
	// The key order is AWS's.
	for _, r := range got {
		if r.path == "/every" {
			if want := `{"version":"0","id":"` + ev.ID + `","detail-type":"Scheduled Event","source":"aws.events","account":"000000000000","time":"` +
				due + `","region":"us-east-1","resources":["` + every + `"],"detail":{}}`; r.body != want {
				t.Errorf("body %s, want %s", r.body, want)
			}
		}
	}
	if b := f["/both "+due]; len(b) != 1 || b[0].Resources[0] != both || b[0].ID == ev.ID {
		t.Errorf("both: %+v", b)
	}
	// The pattern still routes events to the rule with a schedule.
	var matched int
	for _, r := range got {
		var ev scheduled
		if r.path == "/both" && json.Unmarshal([]byte(r.body), &ev) == nil && ev.Source == "t" {
			matched++
		}
	}
	if matched != 1 {
		t.Errorf("rule both got %d pattern-matched events, want 1", matched)
	}

	// diagnose knows the schedule: when it fires next, who fires it, and
	// when it last fired.
	var diag admin.DiagnoseOutput
	rule := "every"
	if err := e.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".Diagnose", admin.DiagnoseInput{Rule: &rule}, &diag); err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, f := range diag.Findings {
		if f.Check == "schedule" || f.Check == "pattern" {
			notes = append(notes, f.Status+": "+f.Message)
		}
	}
	wantNotes := []string{"OK: the schedule cron(* * * * ? *) fires next at " + minute.Add(time.Minute).Format(time.RFC3339) + " (UTC)",
		"OK: node ", "OK: this node last routed one of the schedule's events at "}
	if len(notes) != len(wantNotes) || diag.Problems != 0 {
		t.Fatalf("diagnose: %+v", diag)
	}
	for i, n := range notes {
		if !strings.HasPrefix(n, wantNotes[i]) {
			t.Errorf("diagnose finding %q, want %q...", n, wantNotes[i])
		}
	}

	// Disabled, "every" is silent; the clock skips ahead to just before
	// the next minute (no due time is passed over).
	if _, err := e.eb.DisableRule(ctx, &eventbridge.DisableRuleInput{Name: aws.String("every")}); err != nil {
		t.Fatal(err)
	}
	next := minute.Add(time.Minute)
	clk.set(next.Add(-2 * time.Second))
	got = s.waitUntil(t, func(got []received) (bool, string) {
		return len(firings(t, got)["/both "+next.Format(time.RFC3339)]) > 0, "the next minute's event for rule both has not arrived"
	})
	time.Sleep(time.Second) // anything else due would have come with it
	got = s.received()
	f = firings(t, got)
	for key, evs := range f {
		switch key {
		case "/every " + due, "/both " + due, "/both " + next.Format(time.RFC3339):
			if len(evs) != 1 {
				t.Errorf("%s fired %d times", key, len(evs))
			}
		default:
			// Later minutes may come on a slow machine; none earlier.
			if key[strings.IndexByte(key, ' ')+1:] <= next.Format(time.RFC3339) {
				t.Errorf("unexpected scheduled event %s: %+v", key, evs)
			}
		}
	}
	m := scrape(t, e.srv.Addr())
	if n := m[`bridgeport_triggered_rules_total{bus="default",rule="every"}`]; n != 1 {
		t.Errorf("TriggeredRules for every: %v, want 1", n)
	}
	if n := m[`bridgeport_scheduled_events_total`]; n < 3 {
		t.Errorf("scheduled events: %v, want 3 (or more, later minutes on a slow machine)", n)
	}
}

// TestScheduleCatchUp stops the only node over due times: on start, each
// schedule fires its latest missed due time once, if no older than the
// catch-up limit (an hour by default), and skips the rest.
func TestScheduleCatchUp(t *testing.T) {
	t.Parallel()
	clk := &testClock{}
	clk.set(time.Date(2030, 1, 7, 1, 58, 0, 0, time.UTC))
	s := newSink(t)
	e := scheduleNode(t, "", s, clk)
	e.scheduleTo("nightly", "cron(0 2 * * ? *)", "", e.destination(s, "n", "/nightly"), types.RuleStateEnabled)
	e.scheduleTo("often", "rate(1 minute)", "", e.destination(s, "o", "/often"), types.RuleStateEnabled)
	e.stop()

	// Down from 01:58 to 02:30:20: 02:00 is 30 minutes late; "often" is
	// due every minute and fires its latest once.
	clk.set(time.Date(2030, 1, 7, 2, 30, 20, 0, time.UTC))
	e.start()
	s.waitUntil(t, func(got []received) (bool, string) {
		f := firings(t, got)
		return len(f["/nightly 2030-01-07T02:00:00Z"]) > 0 && len(got) >= 2, fmt.Sprintf("%d scheduled events arrived", len(got))
	})
	time.Sleep(time.Second)
	// Fires after the restart's time are the schedules going on (on a
	// slow machine "often" may reach its next minute): only what fired
	// for the time it was down counts.
	late := func(got []received, upTo string) map[string]int {
		out := map[string]int{}
		for key, evs := range firings(t, got) {
			if key[strings.IndexByte(key, ' ')+1:] <= upTo {
				out[key] = len(evs)
			}
		}
		return out
	}
	f := late(s.received(), "2030-01-07T02:30:20Z")
	if len(f) != 2 || f["/nightly 2030-01-07T02:00:00Z"] != 1 {
		t.Fatalf("after 32 minutes down: %v", f)
	}
	for key, n := range f {
		if n != 1 || key != "/nightly 2030-01-07T02:00:00Z" && key < "/often 2030-01-07T02:29:00Z" {
			t.Errorf("unexpected %s (%d)", key, n)
		}
	}
	if n := scrape(t, e.srv.Addr())["bridgeport_schedule_catch_ups_total"]; n != 1 {
		t.Errorf("catch-ups: %v, want 1 (nightly; often was less than 90 s late)", n)
	}
	e.stop()
	before := len(s.received())

	// Down until 03:10 the next day: 02:00 is more than an hour late and
	// is skipped; "often" fires once.
	clk.set(time.Date(2030, 1, 8, 3, 10, 0, 0, time.UTC))
	e.start()
	s.waitUntil(t, func(got []received) (bool, string) { return len(got) > before, "no event after the second restart" })
	time.Sleep(time.Second)
	f = late(s.received()[before:], "2030-01-08T03:10:00Z")
	if len(f) != 1 || f["/often 2030-01-08T03:10:00Z"] != 1 {
		t.Fatalf("after a day down: %v", f)
	}
	if n := scrape(t, e.srv.Addr())["bridgeport_schedule_catch_ups_total"]; n != 0 {
		t.Errorf("catch-ups: %v, want 0", n)
	}
}

// TestClusterSchedules runs two nodes on a three-node NATS cluster: each
// due time fires once, whichever node holds the lease, and when the
// holder stops, the other fires the next due times.
func TestClusterSchedules(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	clk := &testClock{}
	minute := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	clk.set(minute.Add(-20 * time.Second))
	urls, s := natstest.Cluster(t, 3), newSink(t)
	a := scheduleNode(t, urls[0], s, clk)
	b := scheduleNode(t, urls[1], s, clk)
	for i := range 20 {
		a.scheduleTo(fmt.Sprint("r", i), "cron(* * * * ? *)", "", a.destination(s, fmt.Sprint("d", i), fmt.Sprint("/", i)), types.RuleStateEnabled)
	}
	waitFor(t, func() bool {
		out, err := b.eb.ListRules(ctx, &eventbridge.ListRulesInput{})
		return err == nil && len(out.Rules) == 20
	})
	if clk.now().After(minute) {
		minute = clk.now().Truncate(time.Minute).Add(time.Minute)
	}
	check := func(due time.Time) {
		t.Helper()
		key := due.Format(time.RFC3339)
		s.waitUntil(t, func(got []received) (bool, string) {
			n := 0
			for k := range firings(t, got) {
				if k[len(k)-len(key):] == key {
					n++
				}
			}
			return n == 20, fmt.Sprintf("%d of 20 rules fired at %s", n, key)
		})
		time.Sleep(time.Second)
		for k, evs := range firings(t, s.received()) {
			if len(evs) != 1 {
				t.Errorf("%s fired %d times", k, len(evs))
			}
		}
	}
	check(minute)
	// Whichever holds the lease, stop A: B fires the next minute.
	a.stop()
	next := minute.Add(time.Minute)
	clk.set(next.Add(-3 * time.Second))
	check(next)
}

// TestTenThousandSchedules puts 10,000 rules on one minute: each fires
// once, on time, from one goroutine (the node's goroutines do not grow
// with the schedules). Not parallel, so that no other test's goroutines
// come and go while it counts.
func TestTenThousandSchedules(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 rules")
	}
	const rules = 10000
	clk := &testClock{}
	minute := time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)
	clk.set(minute.Add(-time.Hour))
	s := newSink(t)
	e := scheduleNode(t, "", s, clk, func(c *config.Config) { c.Quotas.RulesPerBus = rules })
	// The events go to a queue: 10,000 HTTPS calls would measure TLS
	// handshakes (EventBridge closes every connection).
	c := e.sqsClient()
	queue := e.createQueue(c, "fired", map[string]string{"Policy": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
		`"Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`})
	// The node's fixed pools of workers (the jobs' and the router's) may
	// still be starting on a busy machine: they are left out of both
	// counts, which are of everything else.
	goroutines := goroutinesBut(t, fixedPools...)
	t.Logf("%d goroutines but the pools' (%d in all)", goroutines, runtime.NumGoroutine())
	created := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < rules; i += 8 {
				name := aws.String(fmt.Sprint("s", i))
				if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: name, ScheduleExpression: aws.String("cron(0 10 * * ? *)")}); err != nil {
					errs <- err
					return
				}
				if _, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: name, Targets: []types.Target{{Id: aws.String("q"),
					Arn: aws.String(sqsArn + "fired")}}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("10,000 scheduled rules created in %s", time.Since(created).Round(time.Millisecond))
	// Goroutines of the calls just made (connections, writes that wait
	// for their revision to be applied) may take a moment to end on a
	// busy machine; a goroutine per schedule would never.
	for wait := time.Now().Add(30 * time.Second); goroutinesBut(t, fixedPools...) > goroutines+100 && time.Now().Before(wait); {
		time.Sleep(100 * time.Millisecond)
	}
	if n := goroutinesBut(t, fixedPools...); n > goroutines+100 {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("goroutines: %d with 10,000 schedules, %d before (the workers' pools left out of both)\n%s", n, goroutines, b.String())
	}
	clk.set(minute.Add(-2 * time.Second))
	// A rule change wakes the scheduler, which sleeps until the minute.
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("s0"), ScheduleExpression: aws.String("cron(0 10 * * ? *)")}); err != nil {
		t.Fatal(err)
	}
	for scrape(t, e.srv.Addr())["bridgeport_scheduled_events_total"] < rules {
		time.Sleep(50 * time.Millisecond)
	}
	stored := time.Since(clk.real(minute))
	// Each message is counted once by its id and deleted; a receive whose
	// answer is lost on a busy machine (a transport error) is tried again,
	// and its messages come back after their visibility timeout.
	// A receive whose answer was lost hid its messages for the visibility
	// timeout: until it has run out, an empty receive is no loss.
	const visibility = 30
	var lost time.Time
	fired, seen := map[string]int{}, map[string]bool{}
	for len(fired) < rules {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, VisibilityTimeout: visibility,
			WaitTimeSeconds: 20})
		var apiErr smithy.APIError
		switch {
		case errors.As(err, &apiErr):
			t.Fatal(err)
		case err != nil:
			t.Logf("receive: %v; trying again", err)
			lost = time.Now()
			continue
		case len(out.Messages) == 0 && time.Since(lost) < (visibility+5)*time.Second:
			t.Logf("%d of %d rules fired; waiting for the messages of the lost answer", len(fired), rules)
			continue
		case len(out.Messages) == 0:
			t.Fatalf("%d of %d rules fired", len(fired), rules)
		}
		var done []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			done = append(done, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)] = true
			var ev scheduled
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil || ev.Time != "2030-01-07T10:00:00Z" {
				t.Fatalf("%s: %v", aws.ToString(m.Body), err)
			}
			fired[ev.Resources[0]]++
		}
		if _, err := c.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(queue), Entries: done}); err != nil {
			t.Logf("delete: %v (the messages come back and are not counted again)", err)
		}
	}
	delivered := time.Since(clk.real(minute))
	time.Sleep(time.Second)
	if out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10}); err != nil || len(out.Messages) != 0 {
		t.Errorf("more than one event per rule: %+v, %v", out, err)
	}
	for arn, n := range fired {
		if n != 1 {
			t.Errorf("%s fired %d times", arn, n)
		}
	}
	t.Logf("10,000 due times at one minute: all stored %s after it, all delivered to a queue %s after it",
		stored.Round(time.Millisecond), delivered.Round(time.Millisecond))
}

// fixedPools are the functions of the node's worker pools, whose size is
// set by configuration.
var fixedPools = []string{"store.(*Store).consumeJobs.func", "store.(*Store).consumeParallel.func"}

// goroutinesBut counts the process's goroutines but those with a frame in
// one of the functions skip names.
func goroutinesBut(t *testing.T, skip ...string) int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	// Groups of identical stacks: "N @ pcs" and then a "#" line per frame.
	_, groups, _ := strings.Cut(b.String(), "\n") // "goroutine profile: total N"
	n := 0
	for _, group := range strings.Split(groups, "\n\n") {
		head, frames, _ := strings.Cut(group, "\n")
		count, _, ok := strings.Cut(head, " @ ")
		c, err := strconv.Atoi(count)
		if !ok || err != nil {
			continue
		}
		pooled := false
		for _, f := range skip {
			pooled = pooled || strings.Contains(frames, f)
		}
		if !pooled {
			n += c
		}
	}
	return n
}
