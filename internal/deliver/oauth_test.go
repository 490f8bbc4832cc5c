package deliver

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// tokenServer issues numbered tokens that expire after expiresIn seconds,
// or answers with status when it is not 200.
func tokenServer(t *testing.T, expiresIn, status int, body string) (*sink, *int) {
	var mu sync.Mutex
	n := 0
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if status != 200 {
			w.WriteHeader(status)
			return
		}
		n++
		if body != "" {
			fmt.Fprint(w, body)
			return
		}
		fmt.Fprintf(w, `{"access_token":"t%d","expires_in":%d}`, n, expiresIn)
	})
	return s, &n
}

func TestTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	get := func(s *sink, c *OAuthClient) (string, error) {
		ts := newTokens(NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots()}))
		a, err := ts.get(ctx, c)
		if err != nil {
			return "", err
		}
		b, err := ts.get(ctx, c)
		return a + "," + b, err
	}
	client := func(s *sink) *OAuthClient {
		return &OAuthClient{ConnectionArn: "arn:c", Version: "1", Endpoint: s.URL + "/token", Method: "GET", ClientID: "id", ClientSecret: "secret"}
	}

	// A long-lived token is reused; one expiring within a minute is not.
	s, _ := tokenServer(t, 3600, 200, "")
	if got, err := get(s, client(s)); err != nil || got != "t1,t1" {
		t.Errorf("long-lived token: %s %v", got, err)
	}
	s, _ = tokenServer(t, 30, 200, "")
	if got, err := get(s, client(s)); err != nil || got != "t1,t2" {
		t.Errorf("token expiring within a minute: %s %v", got, err)
	}
	r := s.reqs[0]
	if r.Method != "GET" || r.URL.Query().Get("grant_type") != "client_credentials" {
		t.Errorf("token request %s %s", r.Method, r.URL)
	}

	// Refusals and unusable answers are errors that name the endpoint and
	// never the secret.
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{{403, "", "403"}, {500, "", "500"}, {200, `{"token":"x"}`, "without an access_token"}, {200, `not json`, "without an access_token"}} {
		s, _ := tokenServer(t, 0, tc.status, tc.body)
		_, err := get(s, client(s))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("status %d body %q: %v", tc.status, tc.body, err)
		}
	}

	// invalidate forgets a refused token.
	s, _ = tokenServer(t, 3600, 200, "")
	ts := newTokens(NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots()}))
	c := client(s)
	a, _ := ts.get(ctx, c)
	ts.invalidate(c, a)
	if b, _ := ts.get(ctx, c); a != "t1" || b != "t2" {
		t.Errorf("after invalidate: %s then %s", a, b)
	}
}

// TestTokenRequestGuards: the token request carries the client secret, so
// it follows the invocations' rules: https only unless plain http is
// allowed, no private addresses unless allowed (after resolution), no
// redirects. Refused requests never leave, and no error shows the secret.
func TestTokenRequestGuards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const secret = "cl1ent-s3cret-value"
	basic := base64.StdEncoding.EncodeToString([]byte("id:" + secret))
	client := func(endpoint string) *OAuthClient {
		return &OAuthClient{ConnectionArn: "arn:c", Version: "1", Endpoint: endpoint, Method: "POST", ClientID: "id", ClientSecret: secret}
	}
	noSecret := func(name string, err error) {
		t.Helper()
		if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), basic)) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}

	// Plain http: refused before any request, unless allowed.
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		fmt.Fprint(w, `{"access_token":"t1","expires_in":3600}`)
	}))
	t.Cleanup(plain.Close)
	_, err := newTokens(NewInvoker(Options{AllowPrivate: true})).get(ctx, client(plain.URL+"/token"))
	if err == nil || !strings.Contains(err.Error(), "--allow-http-endpoints") || !strings.Contains(err.Error(), "not sent") || plainHits.Load() != 0 {
		t.Errorf("http token endpoint: %v, %d requests", err, plainHits.Load())
	}
	noSecret("http", err)
	if tok, err := newTokens(NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})).get(ctx, client(plain.URL+"/token")); err != nil || tok != "t1" || plainHits.Load() != 1 {
		t.Errorf("http token endpoint allowed: %q %v, %d requests", tok, err, plainHits.Load())
	}

	// A name resolving to loopback: refused after resolution.
	s, _ := tokenServer(t, 3600, 200, "")
	for _, endpoint := range []string{s.URL + "/token", strings.Replace(s.URL, "127.0.0.1", "localhost", 1) + "/token"} {
		_, err = newTokens(NewInvoker(Options{RootCAs: s.roots()})).get(ctx, client(endpoint))
		if err == nil || !strings.Contains(err.Error(), "--allow-private-endpoints") || !strings.Contains(err.Error(), "authorization endpoint") || s.count() != 0 {
			t.Errorf("private token endpoint %s: %v, %d requests", endpoint, err, s.count())
		}
		noSecret("private", err)
	}

	// A redirect is the answer, not followed.
	other, _ := tokenServer(t, 3600, 200, "")
	redirect := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/token", http.StatusFound)
	})
	pool := redirect.roots()
	pool.AddCert(other.Certificate())
	_, err = newTokens(NewInvoker(Options{AllowPrivate: true, RootCAs: pool})).get(ctx, client(redirect.URL+"/token"))
	if err == nil || !strings.Contains(err.Error(), "302") || other.count() != 0 {
		t.Errorf("redirecting token endpoint: %v, %d requests to the target of the redirect", err, other.count())
	}
	noSecret("redirect", err)
}
