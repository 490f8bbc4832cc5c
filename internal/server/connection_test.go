package server

import (
	"bytes"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// recorder is an HTTP client that keeps every response body.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.buf.Write(body)
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// TestConnectionsKeepSecrets creates, describes, lists, updates and
// deauthorizes connections of every type, then greps everything the server
// returned, logged and wrote to disk for the secrets.
func TestConnectionsKeepSecrets(t *testing.T) {
	t.Parallel()
	var logs syncWriter
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.Quotas.Connections = 4
	srv, err := Start(ctx, e.cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	t.Cleanup(e.stop)
	rec := &recorder{}
	eb := eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String("http://" + srv.Addr()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, ""), HTTPClient: rec, RetryMaxAttempts: 1})

	secrets := []string{"pa55-w0rd-basic", "api-key-value-123", "oauth-client-secret-xyz", "secret-header-value", "secret-body-value", "new-pa55-w0rd"}
	basic, err := eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("basic"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{
			BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("user"), Password: aws.String(secrets[0])},
			InvocationHttpParameters: &types.ConnectionHttpParameters{
				HeaderParameters: []types.ConnectionHeaderParameter{{Key: aws.String("X-Secret"), Value: aws.String(secrets[3]), IsValueSecret: true},
					{Key: aws.String("X-Plain"), Value: aws.String("plain")}},
				BodyParameters: []types.ConnectionBodyParameter{{Key: aws.String("token"), Value: aws.String(secrets[4]), IsValueSecret: true}},
			}}})
	if err != nil {
		t.Fatal(err)
	}
	if basic.ConnectionState != types.ConnectionStateAuthorized || !strings.HasPrefix(aws.ToString(basic.ConnectionArn), "arn:aws:events:us-east-1:000000000000:connection/basic/") {
		t.Errorf("CreateConnection = %+v", basic)
	}
	key, err := eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("key"), AuthorizationType: types.ConnectionAuthorizationTypeApiKey,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &types.CreateConnectionApiKeyAuthRequestParameters{ApiKeyName: aws.String("x-api-key"), ApiKeyValue: aws.String(secrets[1])}}})
	if err != nil {
		t.Fatal(err)
	}
	oauth, err := eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("oauth"), AuthorizationType: types.ConnectionAuthorizationTypeOauthClientCredentials,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{OAuthParameters: &types.CreateConnectionOAuthRequestParameters{
			AuthorizationEndpoint: aws.String("https://auth.example.com/token"), HttpMethod: types.ConnectionOAuthHttpMethodPost,
			ClientParameters: &types.CreateConnectionOAuthClientRequestParameters{ClientID: aws.String("client"), ClientSecret: aws.String(secrets[2])}}}})
	if err != nil {
		t.Fatal(err)
	}
	if oauth.ConnectionState != types.ConnectionStateAuthorizing || key.ConnectionState != types.ConnectionStateAuthorized {
		t.Errorf("states: oauth %s, api key %s", oauth.ConnectionState, key.ConnectionState)
	}
	_, err = eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("basic"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	apiError(t, err, "ResourceAlreadyExistsException", "")
	_, err = eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("x"), AuthorizationType: "INVALID_AUTH_TYPE",
		AuthParameters: &types.CreateConnectionAuthRequestParameters{}})
	apiError(t, err, "ValidationException", "1 validation error detected: Value 'INVALID_AUTH_TYPE' at 'authorizationType' failed to satisfy constraint: Member must satisfy enum value set: [BASIC, OAUTH_CLIENT_CREDENTIALS, API_KEY]")
	_, err = eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("x"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("bad:" + secrets[0])}}})
	apiError(t, err, "ValidationException", "")

	d, err := eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("basic")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.AuthParameters.BasicAuthParameters.Username) != "user" || len(d.AuthParameters.InvocationHttpParameters.HeaderParameters) != 2 || aws.ToString(d.SecretArn) == "" {
		t.Errorf("DescribeConnection = %+v", d)
	}
	for _, h := range d.AuthParameters.InvocationHttpParameters.HeaderParameters {
		if h.IsValueSecret != (h.Value == nil) {
			t.Errorf("header %s: secret %v, value %v", aws.ToString(h.Key), h.IsValueSecret, h.Value)
		}
	}
	if _, err := eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("oauth")}); err != nil {
		t.Fatal(err)
	}
	_, err = eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("nope")})
	apiError(t, err, "ResourceNotFoundException", "Failed to describe the connection(s). Connection 'nope' does not exist.")
	l, err := eb.ListConnections(ctx, &eventbridge.ListConnectionsInput{ConnectionState: types.ConnectionStateAuthorized})
	if err != nil || len(l.Connections) != 2 {
		t.Errorf("ListConnections AUTHORIZED = %+v, %v", l, err)
	}

	// API destinations follow their connection's state.
	dest, err := eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("hook"), ConnectionArn: basic.ConnectionArn,
		InvocationEndpoint: aws.String("https://example.com/hooks/*"), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if dest.ApiDestinationState != types.ApiDestinationStateActive {
		t.Errorf("destination on a BASIC connection: %s", dest.ApiDestinationState)
	}
	od, err := eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("ohook"), ConnectionArn: oauth.ConnectionArn,
		InvocationEndpoint: aws.String("https://example.com/o"), HttpMethod: types.ApiDestinationHttpMethodPut, InvocationRateLimitPerSecond: aws.Int32(5)})
	if err != nil || od.ApiDestinationState != types.ApiDestinationStateInactive {
		t.Fatalf("destination on an AUTHORIZING connection: %+v, %v", od, err)
	}
	dd, err := eb.DescribeApiDestination(ctx, &eventbridge.DescribeApiDestinationInput{Name: aws.String("hook")})
	if err != nil || aws.ToInt32(dd.InvocationRateLimitPerSecond) != 300 || dd.HttpMethod != types.ApiDestinationHttpMethodPost {
		t.Errorf("DescribeApiDestination = %+v, %v", dd, err)
	}
	_, err = eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("plain"), ConnectionArn: basic.ConnectionArn,
		InvocationEndpoint: aws.String("http://example.com/"), HttpMethod: types.ApiDestinationHttpMethodPost})
	apiError(t, err, "ValidationException", "Invalid InvocationEndpoint http://example.com/: only HTTPS endpoints are allowed."+
		" This server refuses http:// endpoints: start bridgeport with --allow-http-endpoints to allow them.")
	_, err = eb.DescribeApiDestination(ctx, &eventbridge.DescribeApiDestinationInput{Name: aws.String("nope")})
	apiError(t, err, "ResourceNotFoundException", "Failed to describe the api-destination(s). An api-destination 'nope' does not exist.")
	if _, err := eb.UpdateApiDestination(ctx, &eventbridge.UpdateApiDestinationInput{Name: aws.String("hook"), InvocationRateLimitPerSecond: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	ld, err := eb.ListApiDestinations(ctx, &eventbridge.ListApiDestinationsInput{ConnectionArn: basic.ConnectionArn})
	if err != nil || len(ld.ApiDestinations) != 1 || aws.ToInt32(ld.ApiDestinations[0].InvocationRateLimitPerSecond) != 10 {
		t.Errorf("ListApiDestinations = %+v, %v", ld, err)
	}

	// Deauthorizing a connection makes its destinations INACTIVE; new
	// credentials authorize it again.
	da, err := eb.DeauthorizeConnection(ctx, &eventbridge.DeauthorizeConnectionInput{Name: aws.String("basic")})
	if err != nil || da.ConnectionState != types.ConnectionStateDeauthorized {
		t.Fatalf("DeauthorizeConnection = %+v, %v", da, err)
	}
	dd, _ = eb.DescribeApiDestination(ctx, &eventbridge.DescribeApiDestinationInput{Name: aws.String("hook")})
	if dd.ApiDestinationState != types.ApiDestinationStateInactive {
		t.Errorf("destination after deauthorize: %s", dd.ApiDestinationState)
	}
	if _, err := eb.UpdateConnection(ctx, &eventbridge.UpdateConnectionInput{Name: aws.String("basic"), AuthParameters: &types.UpdateConnectionAuthRequestParameters{
		BasicAuthParameters: &types.UpdateConnectionBasicAuthRequestParameters{Password: aws.String(secrets[5])}}}); err != nil {
		t.Fatal(err)
	}
	dd, _ = eb.DescribeApiDestination(ctx, &eventbridge.DescribeApiDestinationInput{Name: aws.String("hook")})
	if dd.ApiDestinationState != types.ApiDestinationStateActive {
		t.Errorf("destination after new credentials: %s", dd.ApiDestinationState)
	}
	del, err := eb.DeleteConnection(ctx, &eventbridge.DeleteConnectionInput{Name: aws.String("key")})
	if err != nil || del.ConnectionState != types.ConnectionStateDeleting {
		t.Fatalf("DeleteConnection = %+v, %v", del, err)
	}
	if _, err := eb.DeleteApiDestination(ctx, &eventbridge.DeleteApiDestinationInput{Name: aws.String("ohook")}); err != nil {
		t.Fatal(err)
	}

	// The secrets survive a restart sealed, and appear nowhere.
	e.stop()
	var disk bytes.Buffer
	_ = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(path)
			disk.Write(data)
		}
		return nil
	})
	for _, s := range secrets {
		for where, text := range map[string]string{"responses": rec.String(), "logs": logs.String(), "data directory": disk.String()} {
			if strings.Contains(text, s) {
				t.Errorf("secret %q found in %s", s, where)
			}
		}
	}
	if !strings.Contains(rec.String(), `"Username":"user"`) || !strings.Contains(disk.String(), "X-Plain") || disk.Len() == 0 {
		t.Error("the grep saw nothing: the test is not looking at the right output")
	}
}

// syncWriter is a bytes.Buffer safe for concurrent writers.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
