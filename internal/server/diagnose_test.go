package server

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"bridgeport/internal/config"
)

// finalAttempt waits until the attempt log holds the event's final record
// and returns it.
func (d *deliveryEnv) finalAttempt(id string) AttemptRecord {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var out AttemptsOutput
		if err := d.admin().Call(ctx, AdminSigningName, "1.1", AdminTargetPrefix+".TraceEvent", TraceEventInput{EventId: &id}, &out); err != nil {
			d.t.Fatal(err)
		}
		if n := len(out.Attempts); n > 0 && out.Attempts[n-1].Outcome != "RETRYING" {
			return out.Attempts[n-1]
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no final attempt for %s: %+v", id, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *deliveryEnv) diagnose(probe bool) DiagnoseOutput {
	d.t.Helper()
	var out DiagnoseOutput
	rule := "r"
	if err := d.admin().Call(ctx, AdminSigningName, "1.1", AdminTargetPrefix+".Diagnose", DiagnoseInput{Rule: &rule, Probe: probe}, &out); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// TestDiagnoseFailures sets up each failure the AWS troubleshooting article
// lists for a rule that does not reach its API destination, and checks
// that diagnose names it with a fix, that the metrics count it and that the
// attempt log shows it.
func TestDiagnoseFailures(t *testing.T) {
	t.Parallel()
	noRetry := &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(0), MaximumEventAgeInSeconds: aws.Int32(600)}
	cases := []struct {
		name    string
		status  func(int) int
		opts    []func(*config.Config)
		setup   func(d *deliveryEnv)
		probe   bool
		check   string // the finding's check
		says    string // in the finding's message
		metric  string // a series that must count it
		code    string // the final attempt's code
		outcome string // the final attempt's outcome
	}{
		{name: "missing permission", setup: func(d *deliveryEnv) {
			c := d.iamClient()
			if _, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("weak"), AssumeRolePolicyDocument: aws.String(eventsTrust)}); err != nil {
				d.t.Fatal(err)
			}
			d.setTarget(func(t *types.Target) { t.RoleArn = aws.String("arn:aws:iam::000000000000:role/weak") })
		}, check: "role", says: "NO_PERMISSIONS", metric: `bridgeport_failed_attempts_total{bus="default",code="NO_PERMISSIONS",rule="r",target="x"}`,
			code: "NO_PERMISSIONS", outcome: "DEAD_LETTERED"},
		{name: "slow endpoint", setup: func(d *deliveryEnv) { d.sink.delay = time.Minute }, probe: true,
			check: "probe", says: "did not answer within 5s", metric: `bridgeport_failed_attempts_total{bus="default",code="TIMEOUT",rule="r",target="x"}`,
			code: "TIMEOUT", outcome: "DEAD_LETTERED"},
		{name: "bad certificate", opts: []func(*config.Config){func(c *config.Config) { c.RootCAs = nil }}, probe: true,
			check: "probe", says: "certificate", metric: `bridgeport_failed_attempts_total{bus="default",code="CONNECTION_FAILURE",rule="r",target="x"}`,
			code: "CONNECTION_FAILURE", outcome: "DEAD_LETTERED"},
		{name: "deauthorized OAuth connection", setup: func(d *deliveryEnv) {
			auth := newAuthServer(d.t, 403)
			conn, err := d.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("oauth"),
				AuthorizationType: types.ConnectionAuthorizationTypeOauthClientCredentials,
				AuthParameters: &types.CreateConnectionAuthRequestParameters{OAuthParameters: &types.CreateConnectionOAuthRequestParameters{
					AuthorizationEndpoint: aws.String(auth.URL + "/token"), HttpMethod: types.ConnectionOAuthHttpMethodPost,
					ClientParameters: &types.CreateConnectionOAuthClientRequestParameters{ClientID: aws.String("id"), ClientSecret: aws.String("secret")}}}})
			if err != nil {
				d.t.Fatal(err)
			}
			dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("od"), ConnectionArn: conn.ConnectionArn,
				InvocationEndpoint: aws.String(d.sink.URL), HttpMethod: types.ApiDestinationHttpMethodPost})
			if err != nil {
				d.t.Fatal(err)
			}
			waitFor(d.t, func() bool {
				c, err := d.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("oauth")})
				return err == nil && c.ConnectionState == types.ConnectionStateDeauthorized
			})
			d.setTarget(func(t *types.Target) { t.Arn = dest.ApiDestinationArn })
		}, check: "connection", says: "DEAUTHORIZED", metric: `bridgeport_failed_attempts_total{bus="default",code="INVALID_PARAMETER",rule="r",target="x"}`,
			code: "INVALID_PARAMETER", outcome: "DEAD_LETTERED"},
		{name: "private endpoint", opts: []func(*config.Config){func(c *config.Config) { c.AllowPrivateEndpoints = false }},
			check: "endpoint", says: "private address", metric: `bridgeport_failed_attempts_total{bus="default",code="INVALID_PARAMETER",rule="r",target="x"}`,
			code: "INVALID_PARAMETER", outcome: "DEAD_LETTERED"},
		{name: "missing dead-letter queue", status: func(int) int { return 400 }, setup: func(d *deliveryEnv) {
			if _, err := d.sqsClient().DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String("http://" + d.srv.Addr() + "/000000000000/dlq")}); err != nil {
				d.t.Fatal(err)
			}
		}, check: "dead-letter queue", says: "does not exist", metric: `bridgeport_invocations_failed_to_be_sent_to_dlq_total{bus="default",rule="r"}`,
			code: "ERROR_FROM_TARGET", outcome: "DEAD_LETTER_FAILED"},
		{name: "dead-letter queue policy", status: func(int) int { return 400 }, setup: func(d *deliveryEnv) {
			if _, err := d.sqsClient().SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String("http://" + d.srv.Addr() + "/000000000000/dlq"),
				Attributes: map[string]string{"Policy": ""}}); err != nil {
				d.t.Fatal(err)
			}
		}, check: "dead-letter queue", says: "policy does not let events.amazonaws.com", metric: `bridgeport_invocations_failed_to_be_sent_to_dlq_total{bus="default",rule="r"}`,
			code: "ERROR_FROM_TARGET", outcome: "DEAD_LETTER_FAILED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			status := c.status
			if status == nil {
				status = func(int) int { return 200 }
			}
			d := setupDelivery(t, status, noRetry, c.opts...)
			d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq"))
			if c.setup != nil {
				c.setup(d)
			}
			id := d.putID()
			last := d.finalAttempt(id)
			if last.ErrorCode != c.code || last.Outcome != c.outcome {
				t.Errorf("attempt log: %+v, want %s and %s", last, c.code, c.outcome)
			}
			out := d.diagnose(c.probe)
			found := false
			for _, f := range out.Findings {
				if f.Check == c.check && f.Status == StatusProblem && strings.Contains(f.Message, c.says) && f.Fix != "" {
					found = true
				}
			}
			if !found || out.Problems == 0 {
				t.Errorf("diagnose did not name %q in %s: %+v", c.says, c.check, out.Findings)
			}
			if got := scrape(t, d.srv.Addr())[c.metric]; got < 1 {
				t.Errorf("%s = %v, want at least 1", c.metric, got)
			}
		})
	}
}

// TestDiagnoseHealthy: a rule that works has no problems.
func TestDiagnoseHealthy(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil)
	d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq"))
	d.put()
	d.sink.wait(t, 1)
	out := d.diagnose(true)
	if out.Problems != 0 || out.Warnings != 0 {
		t.Errorf("healthy rule: %+v", out)
	}
}
