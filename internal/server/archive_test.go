package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"bridgeport/internal/config"
	"bridgeport/internal/natstest"
)

const (
	busArn      = "arn:aws:events:us-east-1:000000000000:event-bus/default"
	archivePref = "arn:aws:events:us-east-1:000000000000:archive/"
)

// TestArchiveAPI: the archive operations with AWS's shapes, messages and
// exceptions, and the managed rule: listed with ManagedBy, protected as
// AWS protects managed rules, removed with its archive.
func TestArchiveAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	out, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("orders"), EventSourceArn: aws.String(busArn),
		EventPattern: aws.String(`{"source":["shop"]}`), RetentionDays: aws.Int32(7), Description: aws.String("all orders")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ArchiveArn) != archivePref+"orders" || out.State != types.ArchiveStateEnabled || out.CreationTime == nil {
		t.Errorf("CreateArchive = %+v", out)
	}
	d, err := e.eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.EventSourceArn) != busArn || aws.ToString(d.EventPattern) != `{"source":["shop"]}` || aws.ToInt32(d.RetentionDays) != 7 ||
		d.EventCount != 0 || d.SizeBytes != 0 || aws.ToString(d.Description) != "all orders" || d.State != types.ArchiveStateEnabled {
		t.Errorf("DescribeArchive = %+v", d)
	}

	// The managed rule.
	rules, err := e.eb.ListRules(ctx, &eventbridge.ListRulesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules.Rules) != 1 || aws.ToString(rules.Rules[0].Name) != "Events-Archive-orders" || aws.ToString(rules.Rules[0].ManagedBy) != "prod.vhs.events.aws.internal" ||
		aws.ToString(rules.Rules[0].EventPattern) != `{"source":["shop"],"replay-name":[{"exists":false}]}` {
		t.Fatalf("ListRules = %+v", rules.Rules)
	}
	targets, err := e.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("Events-Archive-orders")})
	if err != nil || len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != archivePref+"orders" {
		t.Fatalf("ListTargetsByRule = %+v, %v", targets, err)
	}
	managed := "Events-Archive-orders is a managed rule. Set 'force' parameter to true to override."
	_, err = e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("Events-Archive-orders")})
	apiError(t, err, "ManagedRuleException", managed)
	_, err = e.eb.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String("Events-Archive-orders"), Ids: []string{"Events-Archive-orders"}})
	apiError(t, err, "ManagedRuleException", managed)
	_, err = e.eb.DisableRule(ctx, &eventbridge.DisableRuleInput{Name: aws.String("Events-Archive-orders")})
	apiError(t, err, "ManagedRuleException", "")
	_, err = e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("Events-Archive-orders"), EventPattern: aws.String(`{"source":["x"]}`)})
	apiError(t, err, "ManagedRuleException", "")
	_, err = e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("Events-Archive-orders"),
		Targets: []types.Target{{Id: aws.String("x"), Arn: aws.String(busArn)}}})
	apiError(t, err, "ManagedRuleException", "")
	_, err = e.eb.TagResource(ctx, &eventbridge.TagResourceInput{ResourceARN: rules.Rules[0].Arn, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	apiError(t, err, "ManagedRuleException", "")

	// Errors, in AWS's words; none changes anything.
	long := strings.Repeat("a", 49)
	for _, c := range []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"duplicate", func() error {
			_, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("orders"), EventSourceArn: aws.String(busArn)})
			return err
		}, "ResourceAlreadyExistsException", "Archive orders already exists."},
		{"no bus", func() error {
			_, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("x"), EventSourceArn: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/nope")})
			return err
		}, "ResourceNotFoundException", "Event bus nope does not exist."},
		{"long name", func() error {
			_, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String(long), EventSourceArn: aws.String(busArn)})
			return err
		}, "ValidationException", "1 validation error detected: Value '" + long + "' at 'archiveName' failed to satisfy constraint: Member must have length less than or equal to 48"},
		{"bad pattern", func() error {
			_, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("x"), EventSourceArn: aws.String(busArn), EventPattern: aws.String(`{"a":1}`)})
			return err
		}, "InvalidEventPatternException", ""},
		{"negative retention", func() error {
			_, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("x"), EventSourceArn: aws.String(busArn), RetentionDays: aws.Int32(-1)})
			return err
		}, "ValidationException", "1 validation error detected: Value '-1' at 'retentionDays' failed to satisfy constraint: Member must have value greater than or equal to 0"},
		{"describe missing", func() error {
			_, err := e.eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", "Archive nope does not exist."},
		{"delete missing", func() error {
			_, err := e.eb.DeleteArchive(ctx, &eventbridge.DeleteArchiveInput{ArchiveName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", "Archive nope does not exist."},
		{"update nothing", func() error {
			_, err := e.eb.UpdateArchive(ctx, &eventbridge.UpdateArchiveInput{ArchiveName: aws.String("nope")})
			return err
		}, "ValidationException", "At least one of EventPattern, RetentionDays or Description must be provided."},
		{"update missing", func() error {
			_, err := e.eb.UpdateArchive(ctx, &eventbridge.UpdateArchiveInput{ArchiveName: aws.String("nope"), RetentionDays: aws.Int32(1)})
			return err
		}, "ResourceNotFoundException", "Archive nope does not exist."},
		{"two filters", func() error {
			_, err := e.eb.ListArchives(ctx, &eventbridge.ListArchivesInput{NamePrefix: aws.String("o"), State: types.ArchiveStateEnabled})
			return err
		}, "ValidationException", "At most one filter is allowed for ListArchives. Use either : State, EventSourceArn, or NamePrefix."},
		{"rule name taken", func() error {
			if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("Events-Archive-taken"), EventPattern: aws.String(`{"source":["x"]}`)}); err != nil {
				t.Fatal(err)
			}
			_, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("taken"), EventSourceArn: aws.String(busArn)})
			return err
		}, "ResourceAlreadyExistsException", "Rule Events-Archive-taken already exists on EventBus default."},
	} {
		apiErrorNamed(t, c.name, c.call(), c.code, c.msg)
	}

	// Listing, with paging and each filter.
	if _, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("other"), EventSourceArn: aws.String(busArn)}); err != nil {
		t.Fatal(err)
	}
	page, err := e.eb.ListArchives(ctx, &eventbridge.ListArchivesInput{Limit: aws.Int32(1)})
	if err != nil || len(page.Archives) != 1 || aws.ToString(page.Archives[0].ArchiveName) != "orders" || page.NextToken == nil {
		t.Fatalf("ListArchives page 1 = %+v, %v", page, err)
	}
	page, err = e.eb.ListArchives(ctx, &eventbridge.ListArchivesInput{Limit: aws.Int32(1), NextToken: page.NextToken})
	if err != nil || len(page.Archives) != 1 || aws.ToString(page.Archives[0].ArchiveName) != "other" || page.NextToken != nil {
		t.Fatalf("ListArchives page 2 = %+v, %v", page, err)
	}
	page, err = e.eb.ListArchives(ctx, &eventbridge.ListArchivesInput{NamePrefix: aws.String("ot")})
	if err != nil || len(page.Archives) != 1 || aws.ToString(page.Archives[0].EventSourceArn) != busArn {
		t.Fatalf("ListArchives by prefix = %+v, %v", page, err)
	}

	// UpdateArchive changes the pattern of the managed rule.
	if _, err := e.eb.UpdateArchive(ctx, &eventbridge.UpdateArchiveInput{ArchiveName: aws.String("orders"), EventPattern: aws.String(`{"source":["shop2"]}`)}); err != nil {
		t.Fatal(err)
	}
	r, err := e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("Events-Archive-orders")})
	if err != nil || aws.ToString(r.EventPattern) != `{"source":["shop2"],"replay-name":[{"exists":false}]}` {
		t.Fatalf("DescribeRule after UpdateArchive = %+v, %v", r, err)
	}

	// Deleting the rule with Force leaves the archive DISABLED, with the
	// reason; UpdateArchive attaches it again.
	if _, err := e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("Events-Archive-orders"), Force: true}); err != nil {
		t.Fatal(err)
	}
	if d, err := e.eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("orders")}); err != nil || d.State != types.ArchiveStateDisabled || d.StateReason == nil {
		t.Fatalf("DescribeArchive after a forced DeleteRule = %+v, %v", d, err)
	}
	if _, err := e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("Events-Archive-orders")}); err == nil {
		t.Fatal("the managed rule is still there")
	}
	if _, err := e.eb.UpdateArchive(ctx, &eventbridge.UpdateArchiveInput{ArchiveName: aws.String("orders"), Description: aws.String("again")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("Events-Archive-orders")}); err != nil {
		t.Fatal(err)
	}

	// DeleteArchive takes the managed rule with it.
	for _, n := range []string{"orders", "other"} {
		if _, err := e.eb.DeleteArchive(ctx, &eventbridge.DeleteArchiveInput{ArchiveName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	rules, err = e.eb.ListRules(ctx, &eventbridge.ListRulesInput{})
	if err != nil || len(rules.Rules) != 1 || aws.ToString(rules.Rules[0].Name) != "Events-Archive-taken" || rules.Rules[0].ManagedBy != nil {
		t.Fatalf("ListRules after DeleteArchive = %+v, %v", rules, err)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func apiErrorNamed(t *testing.T, name string, err error, code, msg string) {
	t.Helper()
	t.Run(name, func(t *testing.T) { apiError(t, err, code, msg) })
}

// archiveEnv is a delivery environment with a second rule, "raw", that
// sends every "t" event untransformed to the sink's /raw path, and an
// archive of every event of the default bus.
func setupArchive(t *testing.T, opts ...func(*config.Config)) *deliveryEnv {
	t.Helper()
	d := setupDelivery(t, func(int) int { return 200 }, nil, opts...)
	dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("raw"), ConnectionArn: aws.String(d.conn),
		InvocationEndpoint: aws.String(d.sink.URL + "/raw"), HttpMethod: types.ApiDestinationHttpMethodPost, InvocationRateLimitPerSecond: aws.Int32(1000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("raw"), EventPattern: aws.String(`{"source":["t"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("raw"), Targets: []types.Target{{Id: aws.String("raw"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole()}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("all"), EventSourceArn: aws.String(busArn)}); err != nil {
		t.Fatal(err)
	}
	return d
}

// putAt puts n "t" events with the time given (zero: now) and returns
// their ids.
func (d *deliveryEnv) putAt(n int, at time.Time) []string {
	d.t.Helper()
	var ids []string
	for len(ids) < n {
		var entries []types.PutEventsRequestEntry
		for i := len(ids); i < n && len(entries) < 10; i++ {
			e := types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(fmt.Sprintf(`{"n":%d}`, i))}
			if !at.IsZero() {
				e.Time = aws.Time(at)
			}
			entries = append(entries, e)
		}
		out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil || out.FailedEntryCount != 0 {
			d.t.Fatalf("PutEvents: %+v %v", out, err)
		}
		for _, e := range out.Entries {
			ids = append(ids, aws.ToString(e.EventId))
		}
	}
	return ids
}

// rawBodies returns the bodies the sink got on /raw.
func (d *deliveryEnv) rawBodies() []string {
	var out []string
	for _, r := range d.sink.received() {
		if r.path == "/raw" {
			out = append(out, r.body)
		}
	}
	return out
}

func (d *deliveryEnv) waitRaw(n int) []string {
	d.t.Helper()
	waitFor(d.t, func() bool { return len(d.rawBodies()) >= n })
	return d.rawBodies()
}

func (d *deliveryEnv) waitReplay(name string, state types.ReplayState) *eventbridge.DescribeReplayOutput {
	d.t.Helper()
	var out *eventbridge.DescribeReplayOutput
	waitFor(d.t, func() bool {
		var err error
		out, err = d.eb.DescribeReplay(ctx, &eventbridge.DescribeReplayInput{ReplayName: aws.String(name)})
		if err != nil {
			d.t.Fatal(err)
		}
		return out.State == state
	})
	return out
}

// TestArchiveAndReplay: an archive receives the bus's events, counted
// exactly; a replay sends those in its window again, with "replay-name"
// where EventBridge puts it, to the rules in FilterArns only, with the
// targets' full delivery; replayed events are not archived again.
func TestArchiveAndReplay(t *testing.T) {
	t.Parallel()
	d := setupArchive(t)
	old := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	oldIDs := d.putAt(5, old)
	ids := d.putAt(20, time.Time{})
	d.waitRaw(25)
	d.sink.wait(t, 50)

	// EventCount and SizeBytes: every envelope is the same size here
	// (ids and times have fixed lengths).
	one := fmt.Sprintf(`{"version":"0","id":"%s","detail-type":"x","source":"t","account":"000000000000","time":"2026-12-05T00:00:00Z","region":"us-east-1","resources":[],"detail":{"n":0}}`, ids[0])
	// The five old events have n from 0 to 4, the others 0 to 19.
	var want int64
	for _, n := range append([]int{0, 1, 2, 3, 4}, seq(20)...) {
		want += int64(len(one) + len(fmt.Sprint(n)) - 1)
	}
	var a *eventbridge.DescribeArchiveOutput
	waitFor(t, func() bool {
		var err error
		a, err = d.eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("all")})
		return err == nil && a.EventCount == 25
	})
	if a.SizeBytes != want {
		t.Errorf("SizeBytes = %d, want %d", a.SizeBytes, want)
	}

	// Replay the last hour to the raw rule only.
	rawArn := "arn:aws:events:us-east-1:000000000000:rule/raw"
	start, err := d.eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String("again"), EventSourceArn: aws.String(archivePref + "all"),
		EventStartTime: aws.Time(time.Now().Add(-time.Hour)), EventEndTime: aws.Time(time.Now().Add(time.Minute)),
		Destination: &types.ReplayDestination{Arn: aws.String(busArn), FilterArns: []string{rawArn}}})
	if err != nil {
		t.Fatal(err)
	}
	if start.State != types.ReplayStateStarting || aws.ToString(start.ReplayArn) != "arn:aws:events:us-east-1:000000000000:replay/again" {
		t.Errorf("StartReplay = %+v", start)
	}
	done := d.waitReplay("again", types.ReplayStateCompleted)
	if done.EventLastReplayedTime == nil || done.ReplayEndTime == nil || done.ReplayStartTime == nil ||
		aws.ToString(done.EventSourceArn) != archivePref+"all" || !slices.Equal(done.Destination.FilterArns, []string{rawArn}) {
		t.Errorf("DescribeReplay = %+v", done)
	}
	got := d.waitRaw(45)
	replayed := map[string]bool{}
	for _, b := range got[25:] {
		if !strings.Contains(b, `"region":"us-east-1","replay-name":"again","resources":[]`) {
			t.Fatalf("replayed event without its replay name where AWS puts it: %s", b)
		}
		replayed[b[strings.Index(b, `"id":"`)+6:][:36]] = true
	}
	for _, id := range ids {
		if !replayed[id] {
			t.Errorf("event %s not replayed", id)
		}
	}
	for _, id := range oldIDs {
		if replayed[id] {
			t.Errorf("event %s outside the window replayed", id)
		}
	}
	// Only the rule in FilterArns got them; the archive did not keep them.
	time.Sleep(200 * time.Millisecond)
	if n := len(d.sink.received()); n != 70 {
		t.Errorf("%d requests, want 70 (25 x 2 live, 20 replayed to raw only)", n)
	}
	a, err = d.eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("all")})
	if err != nil || a.EventCount != 25 {
		t.Errorf("archive after the replay: %+v, %v", a, err)
	}

	// The old window, to every rule.
	if _, err := d.eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String("old"), EventSourceArn: aws.String(archivePref + "all"),
		EventStartTime: aws.Time(old), EventEndTime: aws.Time(old.Add(time.Second)), Destination: &types.ReplayDestination{Arn: aws.String(busArn)}}); err != nil {
		t.Fatal(err)
	}
	d.waitReplay("old", types.ReplayStateCompleted)
	d.sink.wait(t, 80)

	list, err := d.eb.ListReplays(ctx, &eventbridge.ListReplaysInput{State: types.ReplayStateCompleted})
	if err != nil || len(list.Replays) != 2 || aws.ToString(list.Replays[0].ReplayName) != "again" {
		t.Fatalf("ListReplays = %+v, %v", list, err)
	}
	_, err = d.eb.CancelReplay(ctx, &eventbridge.CancelReplayInput{ReplayName: aws.String("old")})
	apiError(t, err, "IllegalStatusException", "Replay old is not in a valid state for this operation.")
}

// TestReplayErrors: StartReplay's checks, in AWS's order and words.
func TestReplayErrors(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if _, err := e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("other")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("a"), EventSourceArn: aws.String(busArn)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	start := func(name, source, dest string, from, to time.Time, filter ...string) error {
		_, err := e.eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String(name), EventSourceArn: aws.String(source),
			EventStartTime: aws.Time(from), EventEndTime: aws.Time(to), Destination: &types.ReplayDestination{Arn: aws.String(dest), FilterArns: filter}})
		return err
	}
	other := "arn:aws:events:us-east-1:000000000000:event-bus/other"
	apiError(t, start("r", archivePref+"a", other, now, now.Add(-10*time.Second)), "ValidationException",
		"Parameter EventEndTime is not valid. Reason: EventStartTime must be before EventEndTime.")
	apiError(t, start("r", archivePref+"nope", busArn, now.Add(-time.Minute), now), "ValidationException",
		"Parameter EventSourceArn is not valid. Reason: Archive nope does not exist.")
	apiError(t, start("r", archivePref+"a", "arn:aws:events:us-east-1:000000000000:event-bus/gone", now.Add(-time.Minute), now), "ResourceNotFoundException",
		"Event bus gone does not exist.")
	apiError(t, start("r", archivePref+"a", other, now.Add(-time.Minute), now), "ValidationException",
		"Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted.")
	apiError(t, start("r", archivePref+"a", busArn, now.Add(-time.Minute), now, "arn:aws:events:us-east-1:000000000000:rule/none"), "ResourceNotFoundException",
		"Rule none does not exist on EventBus default.")
	apiError(t, start(strings.Repeat("r", 65), archivePref+"a", busArn, now.Add(-time.Minute), now), "ValidationException", "")
	if err := start("r", archivePref+"a", busArn, now.Add(-time.Minute), now); err != nil {
		t.Fatal(err)
	}
	apiError(t, start("r", archivePref+"a", busArn, now.Add(-time.Minute), now), "ResourceAlreadyExistsException", "Replay r already exists.")
	_, err := e.eb.DescribeReplay(ctx, &eventbridge.DescribeReplayInput{ReplayName: aws.String("nope")})
	apiError(t, err, "ResourceNotFoundException", "Replay nope does not exist.")
	_, err = e.eb.ListReplays(ctx, &eventbridge.ListReplaysInput{NamePrefix: aws.String("r"), State: types.ReplayStateRunning})
	apiError(t, err, "ValidationException", "At most one filter is allowed for ListReplays. Use either : State, EventSourceArn, or NamePrefix.")
}

// TestReplayCancelAndLimit: a replay held back (its lane full) is RUNNING
// until cancelled, then CANCELLED; ten such replays are the most that may
// be active, and the eleventh is refused.
func TestReplayCancelAndLimit(t *testing.T) {
	t.Parallel()
	// The lane holds one job at most, and its jobs never finish while
	// the test runs: each replay waits for room.
	d := setupArchive(t, func(c *config.Config) {
		c.ReplayBacklog, c.InvokeTimeout, c.Quotas.ShutdownGraceTime = 1, time.Hour, 100*time.Millisecond
	})
	d.sink.delay = time.Hour
	d.putAt(2, time.Time{})
	waitFor(t, func() bool {
		a, err := d.eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("all")})
		return err == nil && a.EventCount == 2
	})
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	for i := range 10 {
		if _, err := d.eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String(fmt.Sprint("r", i)), EventSourceArn: aws.String(archivePref + "all"),
			EventStartTime: aws.Time(from), EventEndTime: aws.Time(to), Destination: &types.ReplayDestination{Arn: aws.String(busArn)}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := d.eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String("r10"), EventSourceArn: aws.String(archivePref + "all"),
		EventStartTime: aws.Time(from), EventEndTime: aws.Time(to), Destination: &types.ReplayDestination{Arn: aws.String(busArn)}})
	apiError(t, err, "LimitExceededException", "The requested resource exceeds the maximum number allowed.")
	d.waitReplay("r0", types.ReplayStateRunning)
	c, err := d.eb.CancelReplay(ctx, &eventbridge.CancelReplayInput{ReplayName: aws.String("r0")})
	if err != nil || c.State != types.ReplayStateCancelling {
		t.Fatalf("CancelReplay = %+v, %v", c, err)
	}
	r := d.waitReplay("r0", types.ReplayStateCancelled)
	if r.ReplayEndTime == nil {
		t.Errorf("a cancelled replay without its end time: %+v", r)
	}
	// A place is free again.
	if _, err := d.eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String("r10"), EventSourceArn: aws.String(archivePref + "all"),
		EventStartTime: aws.Time(from), EventEndTime: aws.Time(to), Destination: &types.ReplayDestination{Arn: aws.String(busArn)}}); err != nil {
		t.Fatal(err)
	}
}

// TestClusterReplayMovesOn: archives live in the cluster's store; a
// replay that node A runs goes on from where A left it on node B after A
// stops, and finishes there: every event in its window replayed, none
// stuck in RUNNING.
func TestClusterReplayMovesOn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	const events = 2000
	urls, sink := natstest.Cluster(t, 3), newSink(t)
	// Until B starts, the sink holds every call: the replay on A fills
	// its lane (50 jobs) and waits, whatever the machine's speed.
	held := func(e *env) {
		e.cfg.ReplayBacklog, e.cfg.InvokeTimeout, e.cfg.Quotas.ShutdownGraceTime = 50, time.Hour, 100*time.Millisecond
	}
	sink.delay = time.Hour
	a := clusterNode(t, urls[0], sink, held)
	a.route(sink, "/hook", 100000)
	if _, err := a.eb.CreateArchive(ctx, &eventbridge.CreateArchiveInput{ArchiveName: aws.String("all"), EventSourceArn: aws.String(busArn)}); err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(-time.Minute)
	for i := 0; i < events; i += 10 {
		var entries []types.PutEventsRequestEntry
		for j := range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(fmt.Sprintf(`{"i":%d}`, i+j))})
		}
		if out, err := a.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries}); err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
	}
	waitFor(t, func() bool {
		out, err := a.eb.DescribeArchive(ctx, &eventbridge.DescribeArchiveInput{ArchiveName: aws.String("all")})
		return err == nil && out.EventCount == events
	})
	if _, err := a.eb.StartReplay(ctx, &eventbridge.StartReplayInput{ReplayName: aws.String("again"), EventSourceArn: aws.String(archivePref + "all"),
		EventStartTime: aws.Time(from), EventEndTime: aws.Time(time.Now().Add(time.Minute)), Destination: &types.ReplayDestination{Arn: aws.String(busArn)}}); err != nil {
		t.Fatal(err)
	}
	// A has replayed a batch and waits for room.
	waitFor(t, func() bool {
		r, err := a.eb.DescribeReplay(ctx, &eventbridge.DescribeReplayInput{ReplayName: aws.String("again")})
		return err == nil && r.State == types.ReplayStateRunning && r.EventLastReplayedTime != nil
	})
	a.stop()
	sink.mu.Lock()
	sink.delay = 0
	sink.mu.Unlock()
	b := clusterNode(t, urls[1], sink, held)
	replayedIDs := func() (n, dup int) {
		seen := map[string]int{}
		for _, r := range sink.received() {
			if strings.Contains(r.body, `"replay-name":"again"`) {
				seen[r.body[strings.Index(r.body, `"id":"`)+6:][:36]]++
			}
		}
		for _, c := range seen {
			dup += c - 1
		}
		return len(seen), dup
	}
	waitFor(t, func() bool {
		r, err := b.eb.DescribeReplay(ctx, &eventbridge.DescribeReplayInput{ReplayName: aws.String("again")})
		return err == nil && r.State == types.ReplayStateCompleted
	})
	waitFor(t, func() bool { n, _ := replayedIDs(); return n == events })
	n, dup := replayedIDs()
	// A's calls in flight were cut short (and not counted by the sink);
	// at most a batch of 256 is queued again by B.
	if dup > 256+8 {
		t.Errorf("%d events replayed twice", dup)
	}
	t.Logf("node B finished the replay node A began: %d replayed, %d twice", n, dup)
}
