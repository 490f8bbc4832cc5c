package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"
)

// authServer is an OAuth token endpoint that issues numbered tokens, or
// answers with a fixed failure status.
type authServer struct {
	*httptest.Server
	mu     sync.Mutex
	issued int
	fail   int
	forms  []url.Values
	users  []string
}

func newAuthServer(t testing.TB, fail int) *authServer {
	a := &authServer{fail: fail}
	a.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		user, pass, _ := r.BasicAuth()
		a.mu.Lock()
		defer a.mu.Unlock()
		a.forms = append(a.forms, form)
		a.users = append(a.users, user+":"+pass)
		if a.fail != 0 {
			w.WriteHeader(a.fail)
			return
		}
		a.issued++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"token-%d","token_type":"Bearer","expires_in":3600}`, a.issued)
	}))
	t.Cleanup(a.Close)
	return a
}

func TestOAuthConnection(t *testing.T) {
	t.Parallel()
	auth := newAuthServer(t, 0)
	target := newSink(t)
	// The target refuses the first token, as after a revocation.
	target.status = func(n int) int {
		if n == 0 {
			return 401
		}
		return 200
	}
	d := &deliveryEnv{env: &env{t: t, dir: t.TempDir()}, sink: target, logs: &syncWriter{}}
	d.cfg = testConfig(d.dir)
	d.cfg.AllowPrivateEndpoints = true
	pool := target.roots()
	pool.AddCert(auth.Certificate())
	d.cfg.RootCAs = pool
	d.cfg.RetryBaseDelay, d.cfg.RetryMaxDelay = 20*time.Millisecond, 100*time.Millisecond
	srv, err := Start(ctx, d.cfg, slog.New(slog.NewJSONHandler(d.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.srv, d.eb = srv, newClient(srv)
	t.Cleanup(d.stop)

	conn, err := d.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("o"), AuthorizationType: types.ConnectionAuthorizationTypeOauthClientCredentials,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{OAuthParameters: &types.CreateConnectionOAuthRequestParameters{
			AuthorizationEndpoint: aws.String(auth.URL + "/token"), HttpMethod: types.ConnectionOAuthHttpMethodPost,
			ClientParameters:    &types.CreateConnectionOAuthClientRequestParameters{ClientID: aws.String("client"), ClientSecret: aws.String("s3cret")},
			OAuthHttpParameters: &types.ConnectionHttpParameters{BodyParameters: []types.ConnectionBodyParameter{{Key: aws.String("scope"), Value: aws.String("events")}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if conn.ConnectionState != types.ConnectionStateAuthorizing {
		t.Errorf("new OAuth connection is %s", conn.ConnectionState)
	}
	// The first token authorizes it without any event.
	waitFor(t, func() bool {
		c, err := d.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("o")})
		return err == nil && c.ConnectionState == types.ConnectionStateAuthorized && c.LastAuthorizedTime != nil
	})
	auth.mu.Lock()
	if len(auth.forms) != 1 || auth.forms[0].Get("grant_type") != "client_credentials" || auth.forms[0].Get("scope") != "events" || auth.users[0] != "client:s3cret" {
		t.Errorf("token request: %v %v", auth.forms, auth.users)
	}
	auth.mu.Unlock()

	dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(target.URL + "/hook"), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil || dest.ApiDestinationState != types.ApiDestinationStateActive {
		t.Fatalf("destination %+v, %v", dest, err)
	}
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["t"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole()}}}); err != nil {
		t.Fatal(err)
	}
	d.put()
	got := target.wait(t, 2)
	if a, b := got[0].header.Get("Authorization"), got[1].header.Get("Authorization"); a != "Bearer token-1" || b != "Bearer token-2" {
		t.Errorf("authorization: first %q, after the 401 %q", a, b)
	}
	c, _ := d.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("o")})
	if c.ConnectionState != types.ConnectionStateAuthorized {
		t.Errorf("an OAuth connection must stay AUTHORIZED after a 401 it recovered from: %s", c.ConnectionState)
	}
	if strings.Contains(d.logs.String(), "s3cret") || strings.Contains(d.logs.String(), "token-") {
		t.Error("the logs show a secret or a token")
	}
}

func TestOAuthTokenRefused(t *testing.T) {
	t.Parallel()
	auth := newAuthServer(t, 403)
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.AllowPrivateEndpoints = true
	e.cfg.RootCAs = auth.roots()
	e.start()
	conn, err := e.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("o"), AuthorizationType: types.ConnectionAuthorizationTypeOauthClientCredentials,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{OAuthParameters: &types.CreateConnectionOAuthRequestParameters{
			AuthorizationEndpoint: aws.String(auth.URL + "/token"), HttpMethod: types.ConnectionOAuthHttpMethodPost,
			ClientParameters: &types.CreateConnectionOAuthClientRequestParameters{ClientID: aws.String("client"), ClientSecret: aws.String("s3cret")}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		c, err := e.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("o")})
		return err == nil && c.ConnectionState == types.ConnectionStateDeauthorized && strings.Contains(aws.ToString(c.StateReason), "403")
	})
	dest, err := e.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String("https://example.com/"), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil || dest.ApiDestinationState != types.ApiDestinationStateInactive {
		t.Errorf("destination on a deauthorized connection: %+v %v", dest, err)
	}
}

func (a *authServer) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.Certificate())
	return pool
}

// waitFor polls cond until it holds. Its bound, a minute, only ends a
// test whose condition never comes; no test relies on it being sooner.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOAuthEndpointRules: an OAuth token endpoint follows the API
// destinations' rules, at CreateConnection and UpdateConnection and again
// each time a token is fetched: https only unless --allow-http-endpoints,
// no private addresses unless --allow-private-endpoints. A refused token
// request never leaves; the connection is DEAUTHORIZED with the reason;
// the client secret is in no response, log line or metric.
func TestOAuthEndpointRules(t *testing.T) {
	t.Parallel()
	const secret = "oauth-s3cret-never-shown"
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		fmt.Fprint(w, `{"access_token":"plain-token","expires_in":3600}`)
	}))
	t.Cleanup(plain.Close)
	auth := newAuthServer(t, 0)
	target := newSink(t)
	pool := auth.roots()
	pool.AddCert(target.Certificate())

	logs := &syncWriter{}
	rec := &recorder{}
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.RootCAs = pool
	start := func(allowHTTP, allowPrivate bool) {
		e.stop()
		e.cfg.AllowHTTPEndpoints, e.cfg.AllowPrivateEndpoints = allowHTTP, allowPrivate
		srv, err := Start(ctx, e.cfg, slog.New(slog.NewJSONHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		e.started(srv)
		e.eb = eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String("http://" + srv.Addr()), Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, ""), HTTPClient: rec, RetryMaxAttempts: 1})
	}
	oauthParams := func(endpoint string) *types.CreateConnectionAuthRequestParameters {
		return &types.CreateConnectionAuthRequestParameters{OAuthParameters: &types.CreateConnectionOAuthRequestParameters{
			AuthorizationEndpoint: aws.String(endpoint), HttpMethod: types.ConnectionOAuthHttpMethodPost,
			ClientParameters: &types.CreateConnectionOAuthClientRequestParameters{ClientID: aws.String("client"), ClientSecret: aws.String(secret)}}}
	}
	create := func(name, endpoint string) (*eventbridge.CreateConnectionOutput, error) {
		return e.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String(name),
			AuthorizationType: types.ConnectionAuthorizationTypeOauthClientCredentials, AuthParameters: oauthParams(endpoint)})
	}
	deauthorized := func(name, because string) {
		t.Helper()
		waitFor(t, func() bool {
			c, err := e.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String(name)})
			return err == nil && c.ConnectionState == types.ConnectionStateDeauthorized && strings.Contains(aws.ToString(c.StateReason), because)
		})
	}
	refused := func(err error, hints ...string) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || !strings.Contains(ae.ErrorMessage(), "Invalid AuthorizationEndpoint") {
			t.Fatalf("got %v, want a ValidationException for the AuthorizationEndpoint", err)
		}
		for _, h := range hints {
			if !strings.Contains(ae.ErrorMessage(), h) {
				t.Errorf("message %q does not mention %s", ae.ErrorMessage(), h)
			}
		}
	}

	// A server with neither flag: http is refused when stored, with both
	// flags named for a loopback host; an https endpoint on a loopback
	// address is stored, and its token request is refused before it
	// leaves.
	start(false, false)
	_, err := create("plain", plain.URL+"/token")
	refused(err, "--allow-http-endpoints", "--allow-private-endpoints")
	if _, err := create("private", auth.URL+"/token"); err != nil {
		t.Fatal(err)
	}
	deauthorized("private", "--allow-private-endpoints")
	_, err = e.eb.UpdateConnection(ctx, &eventbridge.UpdateConnectionInput{Name: aws.String("private"), AuthParameters: &types.UpdateConnectionAuthRequestParameters{
		OAuthParameters: &types.UpdateConnectionOAuthRequestParameters{AuthorizationEndpoint: aws.String(plain.URL + "/token")}}})
	refused(err, "--allow-http-endpoints")

	// Both allowed: an http token endpoint is stored and used.
	start(true, true)
	if _, err := create("legacy", plain.URL+"/token"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		c, err := e.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("legacy")})
		return err == nil && c.ConnectionState == types.ConnectionStateAuthorized
	})
	if plainHits.Load() != 1 {
		t.Fatalf("%d token requests over http, want 1", plainHits.Load())
	}

	// http no longer allowed: the AUTHORIZED connection stored with an
	// http endpoint gets no token on its first delivery, and is
	// DEAUTHORIZED without a request.
	start(false, true)
	_, err = create("plain", plain.URL+"/token")
	refused(err, "--allow-http-endpoints")
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "--allow-private-endpoints") {
		t.Errorf("private endpoints are allowed, yet the message says %q", ae.ErrorMessage())
	}
	conn, err := e.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("legacy")})
	if err != nil || conn.ConnectionState != types.ConnectionStateAuthorized {
		t.Fatalf("legacy connection after the restart: %+v %v", conn, err)
	}
	// As for API destinations (the README's local setup with only
	// --allow-private-endpoints).
	_, err = e.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("local"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(plain.URL + "/hook"), HttpMethod: types.ApiDestinationHttpMethodPost})
	apiError(t, err, "ValidationException", "Invalid InvocationEndpoint "+plain.URL+"/hook: only HTTPS endpoints are allowed."+
		" This server refuses http:// endpoints: start bridgeport with --allow-http-endpoints to allow them.")
	e.routeThrough(conn.ConnectionArn, target.URL+"/hook", 300)
	if out, err := e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(`{}`)}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %+v %v", out, err)
	}
	deauthorized("legacy", "--allow-http-endpoints")
	auth.mu.Lock()
	loopback := len(auth.forms)
	auth.mu.Unlock()
	if plainHits.Load() != 1 || len(target.received()) != 0 || loopback != 0 {
		t.Errorf("requests sent: %d token requests over http (want 1, before the restart), %d invocations, %d to the loopback token endpoint",
			plainHits.Load(), len(target.received()), loopback)
	}

	resp, err := http.Get("http://" + e.srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for where, text := range map[string]string{"responses": rec.String(), "logs": logs.String(), "metrics": string(metricsText)} {
		if strings.Contains(text, secret) {
			t.Errorf("the client secret is in the %s", where)
		}
	}
	if !strings.Contains(rec.String(), "--allow-http-endpoints") || !strings.Contains(logs.String(), "deauthorized") {
		t.Error("the grep saw nothing: the test is not looking at the right output")
	}
}
