package deliver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
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
