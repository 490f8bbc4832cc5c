package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"

	"bridgeport/internal/config"
)

const (
	testKey    = "AKIATESTTESTTESTTEST"
	testSecret = "test-secret-test-secret-test-secret-0000"
)

// env is a running server and a client for it.
type env struct {
	t   testing.TB
	dir string
	cfg config.Config
	srv *Server
	eb  *eventbridge.Client
}

func testConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.AccessKeyID = testKey
	cfg.SecretAccessKey = testSecret
	return cfg
}

// setup starts a server on a random loopback port with a fresh data
// directory.
func setup(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	srv, err := Start(context.Background(), e.cfg, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.started(srv)
}

// started makes srv the environment's server, with a client, stopped when
// the test ends.
func (e *env) started(srv *Server) {
	e.srv = srv
	e.eb = eventbridge.New(eventbridge.Options{
		BaseEndpoint:     aws.String("http://" + srv.Addr()),
		Region:           e.cfg.Region,
		Credentials:      credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
		RetryMaxAttempts: 1,
	})
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.srv.Stop(ctx); err != nil {
		e.t.Errorf("stop: %v", err)
	}
	e.srv = nil
}

// restart stops the server and starts a new one on the same data directory.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

// apiError asserts that err is an AWS API error with the code and, if msg
// is not empty, the message.
func apiError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s", err, code)
	}
	// Pattern errors end with a parser location after the reason.
	if ae.ErrorCode() != code || (msg != "" && ae.ErrorMessage() != msg && !strings.HasPrefix(ae.ErrorMessage(), msg+"\n at [Source:")) {
		t.Fatalf("got %s: %q, want %s: %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

var ctx = context.Background()

func TestEventBuses(t *testing.T) {
	t.Parallel()
	e := setup(t)
	creating := time.Now().Truncate(time.Second) // creation times are in whole seconds or finer
	out, err := e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("orders"), Description: aws.String("d"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.EventBusArn), "arn:aws:events:us-east-1:000000000000:event-bus/orders"; got != want {
		t.Errorf("EventBusArn = %s, want %s", got, want)
	}
	_, err = e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("orders")})
	apiError(t, err, "ResourceAlreadyExistsException", "Event bus orders already exists.")
	_, err = e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("bad name!")})
	apiError(t, err, "ValidationException", "1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+")

	d, err := e.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Description) != "d" || d.CreationTime == nil || d.CreationTime.Before(creating) || d.CreationTime.After(time.Now()) {
		t.Errorf("DescribeEventBus = %+v", d)
	}
	_, err = e.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("nope")})
	apiError(t, err, "ResourceNotFoundException", "Event bus nope does not exist.")
	d, err = e.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{})
	if err != nil || aws.ToString(d.Name) != "default" {
		t.Fatalf("DescribeEventBus default = %+v, %v", d, err)
	}
	if _, err := e.eb.UpdateEventBus(ctx, &eventbridge.UpdateEventBusInput{Name: aws.String("orders"), Description: aws.String("new")}); err != nil {
		t.Fatal(err)
	}
	d, _ = e.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/orders")})
	if aws.ToString(d.Description) != "new" {
		t.Errorf("description after update = %q", aws.ToString(d.Description))
	}

	for i := range 5 {
		if _, err := e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(fmt.Sprintf("b%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var token *string
	for {
		l, err := e.eb.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{Limit: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range l.EventBuses {
			names = append(names, aws.ToString(b.Name))
		}
		if token = l.NextToken; token == nil {
			break
		}
	}
	if got := strings.Join(names, ","); got != "b0,b1,b2,b3,b4,default,orders" {
		t.Errorf("paginated buses = %s", got)
	}
	l, err := e.eb.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{NamePrefix: aws.String("b")})
	if err != nil || len(l.EventBuses) != 5 {
		t.Errorf("NamePrefix b: %d buses, %v", len(l.EventBuses), err)
	}
	_, err = e.eb.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{Limit: aws.Int32(101)})
	apiError(t, err, "ValidationException", "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100")
	_, err = e.eb.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{NextToken: aws.String("garbage")})
	apiError(t, err, "ValidationException", "")

	_, err = e.eb.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String("default")})
	apiError(t, err, "ValidationException", "Cannot delete event bus default.")
	if _, err := e.eb.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eb.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String("orders")}); err != nil {
		t.Fatalf("deleting a deleted bus: %v", err)
	}
	_, err = e.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("orders")})
	apiError(t, err, "ResourceNotFoundException", "")

	// The quota counts the default bus: 6 buses now, and a limit of 6.
	e.restartWith(func(c *config.Config) { c.Quotas.EventBuses = 6 })
	_, err = e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("one-too-many")})
	apiError(t, err, "LimitExceededException", "The requested resource exceeds the maximum number allowed.")
	tags, err := e.eb.ListTagsForResource(ctx, &eventbridge.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/b1")})
	if err != nil || len(tags.Tags) != 0 {
		t.Errorf("tags of b1 = %v, %v", tags, err)
	}
}

func (e *env) restartWith(fn func(*config.Config)) {
	e.t.Helper()
	e.stop()
	fn(&e.cfg)
	e.start()
}

func TestRules(t *testing.T) {
	t.Parallel()
	e := setup(t)
	pattern := `{"source":["com.shop"],"detail":{"total":[{"numeric":[">",100]}]}}`
	out, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("big-orders"), EventPattern: aws.String(pattern), Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.RuleArn); got != "arn:aws:events:us-east-1:000000000000:rule/big-orders" {
		t.Errorf("RuleArn = %s", got)
	}
	if _, err := e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("shop")}); err != nil {
		t.Fatal(err)
	}
	out, err = e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r2"), EventPattern: aws.String(pattern), EventBusName: aws.String("shop"), State: types.RuleStateDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.RuleArn); got != "arn:aws:events:us-east-1:000000000000:rule/shop/r2" {
		t.Errorf("RuleArn on a custom bus = %s", got)
	}
	d, err := e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("r2"), EventBusName: aws.String("shop")})
	if err != nil {
		t.Fatal(err)
	}
	if d.State != types.RuleStateDisabled || aws.ToString(d.EventPattern) != pattern || aws.ToString(d.EventBusName) != "shop" {
		t.Errorf("DescribeRule = %+v", d)
	}
	if _, err := e.eb.EnableRule(ctx, &eventbridge.EnableRuleInput{Name: aws.String("r2"), EventBusName: aws.String("shop")}); err != nil {
		t.Fatal(err)
	}
	d, _ = e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("r2"), EventBusName: aws.String("shop")})
	if d.State != types.RuleStateEnabled {
		t.Errorf("state after EnableRule = %s", d.State)
	}
	if _, err := e.eb.DisableRule(ctx, &eventbridge.DisableRuleInput{Name: aws.String("big-orders")}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		in   eventbridge.PutRuleInput
		code string
		msg  string
	}{
		{eventbridge.PutRuleInput{Name: aws.String("x"), EventPattern: aws.String(`{"source":"a"}`)}, "InvalidEventPatternException",
			`Event pattern is not valid. Reason: "source" must be an object or an array`},
		{eventbridge.PutRuleInput{Name: aws.String("x"), EventPattern: aws.String(`{"a":[]}`)}, "InvalidEventPatternException",
			"Event pattern is not valid. Reason: Empty arrays are not allowed"},
		{eventbridge.PutRuleInput{Name: aws.String("x")}, "ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified."},
		{eventbridge.PutRuleInput{Name: aws.String("x"), EventPattern: aws.String(pattern), EventBusName: aws.String("nope")}, "ResourceNotFoundException", "Event bus nope does not exist."},
		{eventbridge.PutRuleInput{Name: aws.String("x"), EventPattern: aws.String(pattern), State: "ON"}, "ValidationException",
			"1 validation error detected: Value 'ON' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]"},
		{eventbridge.PutRuleInput{Name: aws.String(strings.Repeat("n", 65)), EventPattern: aws.String(pattern)}, "ValidationException",
			"1 validation error detected: Value '" + strings.Repeat("n", 65) + "' at 'name' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{eventbridge.PutRuleInput{Name: aws.String("x"), EventPattern: aws.String(`{"a":["` + strings.Repeat("v", 2100) + `"]}`)}, "InvalidEventPatternException", ""},
	} {
		_, err := e.eb.PutRule(ctx, &tc.in)
		apiError(t, err, tc.code, tc.msg)
	}
	_, err = e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("x")})
	apiError(t, err, "ResourceNotFoundException", "Rule x does not exist on EventBus default.")

	for i := range 5 {
		if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(fmt.Sprintf("p%d", i)), EventPattern: aws.String(pattern)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var token *string
	for {
		l, err := e.eb.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String("p"), Limit: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.Rules {
			names = append(names, aws.ToString(r.Name))
		}
		if token = l.NextToken; token == nil {
			break
		}
	}
	if got := strings.Join(names, ","); got != "p0,p1,p2,p3,p4" {
		t.Errorf("paginated rules = %s", got)
	}

	// Targets, and the rules that name one.
	target := types.Target{Id: aws.String("t1"), Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:q"),
		RetryPolicy: &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(3), MaximumEventAgeInSeconds: aws.Int32(600)},
		Input:       aws.String(`{"fixed":true}`)}
	pt, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("p1"), Targets: []types.Target{target}})
	if err != nil || pt.FailedEntryCount != 0 {
		t.Fatalf("PutTargets = %+v, %v", pt, err)
	}
	if _, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("p3"), Targets: []types.Target{target}}); err != nil {
		t.Fatal(err)
	}
	byTarget, err := e.eb.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: target.Arn})
	if err != nil || strings.Join(byTarget.RuleNames, ",") != "p1,p3" {
		t.Errorf("ListRuleNamesByTarget = %v, %v", byTarget, err)
	}
	lt, err := e.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("p1")})
	if err != nil || len(lt.Targets) != 1 || aws.ToInt32(lt.Targets[0].RetryPolicy.MaximumRetryAttempts) != 3 || aws.ToString(lt.Targets[0].Input) != `{"fixed":true}` {
		t.Fatalf("ListTargetsByRule = %+v, %v", lt, err)
	}
	_, err = e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("p1")})
	apiError(t, err, "ValidationException", "Rule can't be deleted since it has targets.")
	rt, err := e.eb.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String("p1"), Ids: []string{"t1", "ghost"}})
	if err != nil || rt.FailedEntryCount != 0 {
		t.Fatalf("RemoveTargets = %+v, %v", rt, err)
	}
	if _, err := e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("p1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("p1")}); err != nil {
		t.Fatalf("deleting a deleted rule: %v", err)
	}

	// Tags on rules.
	arn := aws.String("arn:aws:events:us-east-1:000000000000:rule/shop/r2")
	if _, err := e.eb.TagResource(ctx, &eventbridge.TagResourceInput{ResourceARN: arn, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eb.UntagResource(ctx, &eventbridge.UntagResourceInput{ResourceARN: arn, TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.eb.ListTagsForResource(ctx, &eventbridge.ListTagsForResourceInput{ResourceARN: arn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "b" {
		t.Errorf("tags = %+v, %v", tags, err)
	}
	_, err = e.eb.TagResource(ctx, &eventbridge.TagResourceInput{ResourceARN: aws.String("arn:aws:events:us-east-1:000000000000:rule/ghost"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}})
	apiError(t, err, "ResourceNotFoundException", "Rule ghost does not exist on EventBus default.")

	// Everything survives a restart on the same data directory.
	e.restart()
	d, err = e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("r2"), EventBusName: aws.String("shop")})
	if err != nil || d.State != types.RuleStateEnabled {
		t.Fatalf("after restart: %+v, %v", d, err)
	}
	lt, err = e.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("p3")})
	if err != nil || len(lt.Targets) != 1 {
		t.Fatalf("targets after restart: %+v, %v", lt, err)
	}
	_, err = e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("p1")})
	apiError(t, err, "ResourceNotFoundException", "")
}

func TestTargetLimits(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["a"]}`)}); err != nil {
		t.Fatal(err)
	}
	var targets []types.Target
	for i := range 6 {
		targets = append(targets, types.Target{Id: aws.String(fmt.Sprintf("t%d", i)), Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:q")})
	}
	_, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: targets})
	apiError(t, err, "LimitExceededException", "The requested resource exceeds the maximum number allowed.")
	if _, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: targets[:5]}); err != nil {
		t.Fatal(err)
	}
	// Replacing a target by id does not count twice.
	if _, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: targets[:1]}); err != nil {
		t.Fatal(err)
	}
	_, err = e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("!@#$@!#$"), Arn: aws.String("arn:x")}}})
	apiError(t, err, "ValidationException", "1 validation error detected: Value '!@#$@!#$' at 'targets.1.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
	_, err = e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("x"), Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:q"), Input: aws.String("{}"), InputPath: aws.String("$.detail")}}})
	apiError(t, err, "ValidationException", "Only one of Input, InputPath, or InputTransformer must be provided for target x.")
	_, err = e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("x"), Arn: aws.String("not-an-arn")}}})
	apiError(t, err, "ValidationException", "Parameter not-an-arn is not valid. Reason: Provided Arn is not in correct format.")
	_, err = e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("ghost"), Targets: targets[:1]})
	apiError(t, err, "ResourceNotFoundException", "Rule ghost does not exist on EventBus default.")
	lt, _ := e.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r")})
	if len(lt.Targets) != 5 {
		t.Errorf("%d targets after refused requests, want 5", len(lt.Targets))
	}
}

// TestPutEventsDelivers puts events with every per-entry outcome and checks
// that the matching one reaches both HTTPS API destinations of the enabled
// rule, as EventBridge sends it, and that the disabled rule sends nothing.
func TestPutEventsDelivers(t *testing.T) {
	t.Parallel()
	sink := newSink(t)
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.AllowPrivateEndpoints = true
	e.cfg.RootCAs = sink.roots()
	e.start()
	conn, err := e.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeApiKey,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &types.CreateConnectionApiKeyAuthRequestParameters{ApiKeyName: aws.String("x-api-key"), ApiKeyValue: aws.String("k")}}})
	if err != nil {
		t.Fatal(err)
	}
	var dests []string
	for _, name := range []string{"a", "b"} {
		d, err := e.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String(name), ConnectionArn: conn.ConnectionArn,
			InvocationEndpoint: aws.String(sink.URL + "/" + name), HttpMethod: types.ApiDestinationHttpMethodPost})
		if err != nil {
			t.Fatal(err)
		}
		dests = append(dests, aws.ToString(d.ApiDestinationArn))
	}
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("big"), EventPattern: aws.String(`{"source":["shop"],"detail":{"total":[{"numeric":[">",100]}]}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("off"), EventPattern: aws.String(`{"source":["shop"]}`), State: types.RuleStateDisabled}); err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{"big", "off"} {
		if _, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), Targets: []types.Target{
			{Id: aws.String("a"), Arn: aws.String(dests[0]), RoleArn: e.invokeRole()},
			{Id: aws.String("b"), Arn: aws.String(dests[1]), RoleArn: e.invokeRole()}}}); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	out, err := e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{Source: aws.String("shop"), DetailType: aws.String("Order"), Detail: aws.String("{\"total\": 150,\n \"note\": \"two  words\"}"), Time: &when, Resources: []string{"r1"}},
		{Source: aws.String("shop"), DetailType: aws.String("Order"), Detail: aws.String(`{"total":50}`)},
		{DetailType: aws.String("Order"), Detail: aws.String(`{}`)},
		{Source: aws.String("shop"), DetailType: aws.String("Order"), Detail: aws.String(`[1]`)},
		{Source: aws.String("shop"), DetailType: aws.String("Order"), Detail: aws.String(`{}`), EventBusName: aws.String("ghost")},
		// Compacting must not join the two numbers into valid JSON.
		{Source: aws.String("shop"), DetailType: aws.String("Order"), Detail: aws.String(`{"total": 1 2}`)},
		// A detail must not add members to the envelope.
		{Source: aws.String("shop"), DetailType: aws.String("Order"), Detail: aws.String(`{"total":150},"source":"aws.ec2"`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 5 || len(out.Entries) != 7 {
		t.Fatalf("PutEvents = %+v", out)
	}
	want := []struct{ code, msg string }{
		{"", ""}, {"", ""},
		{"InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument."},
		{"MalformedDetail", "Detail is malformed."},
		{"ResourceNotFoundException", "Event bus ghost does not exist."},
		{"MalformedDetail", "Detail is malformed."},
		{"MalformedDetail", "Detail is malformed."},
	}
	for i, w := range want {
		got := out.Entries[i]
		if aws.ToString(got.ErrorCode) != w.code || aws.ToString(got.ErrorMessage) != w.msg || (w.code == "") != (got.EventId != nil) {
			t.Errorf("entry %d = %+v, want %s %q", i, got, w.code, w.msg)
		}
	}
	got := sink.wait(t, 2)
	paths := map[string]bool{}
	for _, r := range got {
		paths[r.path] = true
		if r.header.Get("X-Api-Key") != "k" || r.header.Get("User-Agent") != "Amazon/EventBridge/ApiDestinations" {
			t.Errorf("headers %v", r.header)
		}
		var env map[string]any
		if err := json.Unmarshal([]byte(r.body), &env); err != nil {
			t.Fatal(err)
		}
		if env["id"] != aws.ToString(out.Entries[0].EventId) || env["time"] != "2026-11-22T10:00:00Z" || env["account"] != "000000000000" || env["detail-type"] != "Order" || env["version"] != "0" {
			t.Errorf("event envelope %s", r.body)
		}
		if !strings.HasPrefix(r.body, `{"version":"0","id":`) || !strings.HasSuffix(r.body, `"resources":["r1"],"detail":{"total":150,"note":"two  words"}}`) {
			t.Errorf("envelope members out of AWS's order: %s", r.body)
		}
	}
	if !paths["/a"] || !paths["/b"] {
		t.Errorf("delivered to %v", paths)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(sink.received()); n != 2 {
		t.Errorf("%d deliveries, want 2: the disabled rule or the unmatched event was delivered", n)
	}

	_, err = e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, 11)})
	apiError(t, err, "ValidationException", "")
	big := strings.Repeat("x", 1<<20)
	_, err = e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("s"), DetailType: aws.String("t"), Detail: aws.String(`{"a":"` + big + `"}`)}}})
	apiError(t, err, "ValidationException", "Total size of the entries in the request is over the limit.")
}

func TestTestEventPattern(t *testing.T) {
	t.Parallel()
	e := setup(t)
	event := `{"id":"1","account":"123456789012","source":"shop","time":"2026-01-01T00:00:00Z","region":"us-east-1","detail-type":"x","detail":{"n":5}}`
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{`{"source":["shop"]}`, true},
		{`{"detail":{"n":[{"numeric":[">",10]}]}}`, false},
	} {
		out, err := e.eb.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(tc.pattern), Event: aws.String(event)})
		if err != nil || out.Result != tc.want {
			t.Errorf("TestEventPattern(%s) = %v, %v", tc.pattern, out, err)
		}
	}
	// An array detail-type is evaluated as any array is, as AWS does.
	arrayType := `{"id":"1","account":"123456789012","source":"shop","time":"2026-01-01T00:00:00Z","region":"us-east-1","detail-type":["EC2 Instance State-change Notification"]}`
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{`{"detail-type":[{"equals-ignore-case":"ec2 instance state-change notification"}]}`, true},
		{`{"detail-type":[{"equals-ignore-case":"I do not match"}]}`, false},
	} {
		out, err := e.eb.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(tc.pattern), Event: aws.String(arrayType)})
		if err != nil || out.Result != tc.want {
			t.Errorf("TestEventPattern(%s) on an array detail-type = %v, %v", tc.pattern, out, err)
		}
	}
	for _, bad := range []string{`{"source":"shop"}`, `["plain string"]`, `"plain string"`, `{"testEvent":"value"}`, `{"id":`} {
		_, err := e.eb.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(`{"source":["shop"]}`), Event: aws.String(bad)})
		apiError(t, err, "ValidationException", "Parameter Event is not valid.")
	}
	_, err := e.eb.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(`{"source":["shop"]}`), Event: aws.String(`{"source":"shop"}`)})
	apiError(t, err, "ValidationException", "Parameter Event is not valid.")
	_, err = e.eb.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(`{"source":[{"numeric":[">"]}]}`), Event: aws.String(event)})
	apiError(t, err, "InvalidEventPatternException", "")
}

// TestProtocol covers what the SDK never sends: unsigned and malformed
// requests, unknown operations, and the health endpoints.
func TestProtocol(t *testing.T) {
	t.Parallel()
	e := setup(t)
	base := "http://" + e.srv.Addr()
	for _, tc := range []struct {
		name, target, body string
		status             int
		code               string
	}{
		{"unsigned", "AWSEvents.ListEventBuses", `{}`, 400, "MissingAuthenticationTokenException"},
		{"unknown service", "Nope.ListEventBuses", `{}`, 400, "UnknownOperationException"},
	} {
		req, _ := http.NewRequest("POST", base+"/", strings.NewReader(tc.body))
		req.Header.Set("X-Amz-Target", tc.target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &got)
		if resp.StatusCode != tc.status || got.Type != tc.code || resp.Header.Get("X-Amzn-ErrorType") != tc.code || resp.Header.Get("x-amzn-RequestId") == "" || got.Message == "" {
			t.Errorf("%s: %d %s %v", tc.name, resp.StatusCode, body, resp.Header)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}

func TestQuotas(t *testing.T) {
	t.Parallel()
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.Quotas.RulesPerBus = 2
	e.cfg.Quotas.WildcardRules = 1
	e.cfg.Quotas.PatternSize = 40
	e.start()
	put := func(name, pattern string) error {
		_, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(pattern)})
		return err
	}
	if err := put("w1", `{"a":[{"wildcard":"x*"}]}`); err != nil {
		t.Fatal(err)
	}
	apiError(t, put("w2", `{"a":[{"wildcard":"y*"}]}`), "LimitExceededException", "The requested resource exceeds the maximum number allowed.")
	// Updating the wildcard rule is not a new wildcard rule.
	if err := put("w1", `{"a":[{"wildcard":"z*"}]}`); err != nil {
		t.Fatal(err)
	}
	apiError(t, put("long", `{"source":["`+strings.Repeat("s", 40)+`"]}`), "InvalidEventPatternException", "")
	if err := put("r2", `{"a":["b"]}`); err != nil {
		t.Fatal(err)
	}
	apiError(t, put("r3", `{"a":["b"]}`), "LimitExceededException", "")
	if err := put("r2", `{"a":["c"]}`); err != nil {
		t.Fatalf("updating a rule at the quota: %v", err)
	}
}

// TestUnknownOperation calls operations bridgeport does not implement
// through each protocol's SDK client, and sends a correctly signed request
// for an operation EventBridge does not have: each answer names the
// operation and says bridgeport does not support it.
func TestUnknownOperation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	says := func(err error, code string, words ...string) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code {
			t.Fatalf("got %v, want %s", err, code)
		}
		for _, w := range words {
			if !strings.Contains(ae.ErrorMessage(), w) {
				t.Errorf("%s: message %q does not say %q", code, ae.ErrorMessage(), w)
			}
		}
	}
	_, err := e.eb.ListEndpoints(ctx, &eventbridge.ListEndpointsInput{})
	says(err, "UnknownOperationException", "does not support the operation ListEndpoints", "AWSEvents.ListEndpoints")
	// Every SQS operation is served: an invented one.
	resp := e.signedSQS(t, "FlyToTheMoon", `{}`)
	sqsBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(sqsBody), "UnknownOperationException") || !strings.Contains(string(sqsBody), "AmazonSQS.FlyToTheMoon") {
		t.Errorf("unknown SQS operation: %d %s", resp.StatusCode, sqsBody)
	}
	_, err = e.iamClient().CreateInstanceProfile(ctx, &awsiam.CreateInstanceProfileInput{InstanceProfileName: aws.String("u")})
	says(err, "InvalidAction", "Could not find operation CreateInstanceProfile for version 2010-05-08", "does not implement")

	body := []byte(`{}`)
	req, _ := http.NewRequest("POST", "http://"+e.srv.Addr()+"/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "AWSEvents.FlyToTheMoon")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, hex.EncodeToString(sum[:]), "events", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(got), `"__type":"UnknownOperationException"`) || !strings.Contains(string(got), "FlyToTheMoon") {
		t.Errorf("%d %s", resp.StatusCode, got)
	}
}
