package server

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"bridgeport/internal/admin"
	"bridgeport/internal/config"
)

// finalAttempt waits until the attempt log holds the event's final record
// and returns it.
func (d *deliveryEnv) finalAttempt(id string) admin.AttemptRecord {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var out admin.AttemptsOutput
		if err := d.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".TraceEvent", admin.TraceEventInput{EventId: &id}, &out); err != nil {
			d.t.Fatalf("%v; log: %s", err, d.logs.String())
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

func (d *deliveryEnv) diagnose(probe bool) admin.DiagnoseOutput {
	d.t.Helper()
	var out admin.DiagnoseOutput
	rule := "r"
	if err := d.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".Diagnose", admin.DiagnoseInput{Rule: &rule, Probe: probe}, &out); err != nil {
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
				if f.Check == c.check && f.Status == admin.StatusProblem && strings.Contains(f.Message, c.says) && f.Fix != "" {
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

// probeRequest is a request the probed endpoint received.
type probeRequest struct {
	method, path string
	header       http.Header
	body         string
}

// TestDiagnoseProbe probes an HTTPS endpoint that answers each path its
// own way: the probe must use the destination's method, a test event as
// the body and the connection's auth, and call only a 2xx OK.
func TestDiagnoseProbe(t *testing.T) {
	t.Parallel()
	const password = "probe-pa55word"
	var mu sync.Mutex
	var got []probeRequest
	release := make(chan struct{})
	endpoint := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, probeRequest{r.Method, r.URL.Path, r.Header.Clone(), string(body)})
		mu.Unlock()
		switch r.URL.Path {
		case "/fails": // what a HEAD probe could not see
			if r.Method == http.MethodHead {
				return
			}
			w.WriteHeader(500)
			_, _ = io.WriteString(w, "database down")
		case "/slow": // never answers
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/missing":
			w.WriteHeader(404)
		case "/picky": // refuses the body, and echoes the credentials
			w.WriteHeader(400)
			_, _ = io.WriteString(w, "missing order_id; you sent Authorization: "+r.Header.Get("Authorization"))
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusMovedPermanently)
		default:
			w.WriteHeader(202)
		}
	}))
	t.Cleanup(endpoint.Close)
	t.Cleanup(func() { close(release) }) // before endpoint.Close
	d := setupDelivery(t, func(int) int { return 200 }, nil, func(c *config.Config) { c.RootCAs.AddCert(endpoint.Certificate()) })
	if _, err := d.eb.UpdateConnection(ctx, &eventbridge.UpdateConnectionInput{Name: aws.String("c"), AuthParameters: &types.UpdateConnectionAuthRequestParameters{
		BasicAuthParameters: &types.UpdateConnectionBasicAuthRequestParameters{Password: aws.String(password)}}}); err != nil {
		t.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+password))
	for _, tc := range []struct {
		path, method string
		status       string
		says         []string
	}{
		{"/fails", "POST", admin.StatusProblem, []string{"sent POST", "answered 500", "database down"}},
		{"/slow", "POST", admin.StatusProblem, []string{"TIMEOUT", "did not answer within 5s"}},
		{"/missing", "PUT", admin.StatusProblem, []string{"sent PUT", "answered 404"}},
		{"/moved", "POST", admin.StatusProblem, []string{"answered 301"}},
		{"/picky", "POST", admin.StatusWarning, []string{"answered 400", "missing order_id", "not the target's input"}},
		{"/ok", "DELETE", admin.StatusOK, []string{"sent DELETE", "answered 202", "the connection's BASIC auth", "the limit is 5s"}},
	} {
		if _, err := d.eb.UpdateApiDestination(ctx, &eventbridge.UpdateApiDestinationInput{Name: aws.String("d"),
			InvocationEndpoint: aws.String(endpoint.URL + tc.path), HttpMethod: types.ApiDestinationHttpMethod(tc.method)}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		before := len(got)
		mu.Unlock()
		var probe *admin.Finding
		out := d.diagnose(true)
		for i, f := range out.Findings {
			if f.Check == "probe" {
				probe = &out.Findings[i]
			}
		}
		if probe == nil {
			t.Fatalf("%s: no probe finding: %+v", tc.path, out.Findings)
		}
		if probe.Status != tc.status || (tc.status == admin.StatusProblem && probe.Fix == "") {
			t.Errorf("%s: %s %q (fix %q), want %s", tc.path, probe.Status, probe.Message, probe.Fix, tc.status)
		}
		for _, w := range tc.says {
			if !strings.Contains(probe.Message, w) {
				t.Errorf("%s: %q does not say %q", tc.path, probe.Message, w)
			}
		}
		if strings.Contains(probe.Message, password) || strings.Contains(probe.Message, basic[len("Basic "):]) {
			t.Errorf("%s: the probe's message shows the password: %q", tc.path, probe.Message)
		}
		mu.Lock()
		sent := append([]probeRequest(nil), got[before:]...)
		mu.Unlock()
		if len(sent) != 1 {
			t.Fatalf("%s: %d requests, want 1 (no redirect followed)", tc.path, len(sent))
		}
		r := sent[0]
		var ev map[string]any
		if r.method != tc.method || r.path != tc.path || json.Unmarshal([]byte(r.body), &ev) != nil || ev["source"] != "bridgeport.diagnose" ||
			r.header.Get("Authorization") != basic || r.header.Get("User-Agent") != "Amazon/EventBridge/ApiDestinations" ||
			r.header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: the probe sent %s %s %v %s", tc.path, r.method, r.path, r.header, r.body)
		}
	}
}

// TestDiagnoseProbeOAuth: a probe through an OAuth connection carries its
// token, and a probe on a connection that cannot authorize is not sent.
func TestDiagnoseProbeOAuth(t *testing.T) {
	t.Parallel()
	auth, refused := newAuthServer(t, 0), newAuthServer(t, 403)
	d := setupDelivery(t, func(int) int { return 200 }, nil, func(c *config.Config) {
		c.RootCAs.AddCert(auth.Certificate())
		c.RootCAs.AddCert(refused.Certificate())
	})
	oauth := func(name, endpoint string) *string {
		conn, err := d.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String(name),
			AuthorizationType: types.ConnectionAuthorizationTypeOauthClientCredentials,
			AuthParameters: &types.CreateConnectionAuthRequestParameters{OAuthParameters: &types.CreateConnectionOAuthRequestParameters{
				AuthorizationEndpoint: aws.String(endpoint), HttpMethod: types.ConnectionOAuthHttpMethodPost,
				ClientParameters: &types.CreateConnectionOAuthClientRequestParameters{ClientID: aws.String("id"), ClientSecret: aws.String("oauth-s3cret")}}}})
		if err != nil {
			t.Fatal(err)
		}
		return conn.ConnectionArn
	}
	probeOf := func(connArn *string) admin.Finding {
		t.Helper()
		if _, err := d.eb.UpdateApiDestination(ctx, &eventbridge.UpdateApiDestinationInput{Name: aws.String("d"), ConnectionArn: connArn}); err != nil {
			t.Fatal(err)
		}
		for _, f := range d.diagnose(true).Findings {
			if f.Check == "probe" {
				return f
			}
		}
		t.Fatal("no probe finding")
		return admin.Finding{}
	}
	good := oauth("good", auth.URL+"/token")
	waitFor(t, func() bool {
		c, err := d.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("good")})
		return err == nil && c.ConnectionState == types.ConnectionStateAuthorized
	})
	before := len(d.sink.received())
	f := probeOf(good)
	got := d.sink.received()[before:]
	if f.Status != admin.StatusOK || !strings.Contains(f.Message, "OAuth token") || len(got) != 1 || !strings.HasPrefix(got[0].header.Get("Authorization"), "Bearer token-") {
		t.Errorf("probe through OAuth: %+v, sent %+v", f, got)
	}

	bad := oauth("bad", refused.URL+"/token")
	waitFor(t, func() bool {
		c, err := d.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("bad")})
		return err == nil && c.ConnectionState == types.ConnectionStateDeauthorized
	})
	before = len(d.sink.received())
	if f := probeOf(bad); f.Status != admin.StatusWarning || !strings.Contains(f.Message, "not sent") || len(d.sink.received()) != before {
		t.Errorf("probe on a deauthorized connection: %+v", f)
	}
}
