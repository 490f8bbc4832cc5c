package deliver

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink is an HTTPS test server that records what it receives.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func newSink(t *testing.T, handler http.HandlerFunc) *sink {
	t.Helper()
	s := &sink{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, string(b))
		s.mu.Unlock()
		if handler != nil {
			handler(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *sink) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

const event = `{"version":"0","id":"e1","detail-type":"Order","source":"shop","detail":{"id":"o-42","n":7}}`

func TestInvokeRequest(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	iv := NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots()})
	for _, tc := range []struct {
		name  string
		auth  Auth
		check func(r *http.Request) string
	}{
		{"basic", Auth{Type: "BASIC", Username: "u", Password: "p:w"}, func(r *http.Request) string {
			u, p, ok := r.BasicAuth()
			if !ok || u != "u" || p != "p:w" {
				return "basic auth " + r.Header.Get("Authorization")
			}
			return ""
		}},
		{"api key", Auth{Type: "API_KEY", APIKeyName: "x-api-key", APIKeyValue: "k1"}, func(r *http.Request) string {
			if r.Header.Get("X-Api-Key") != "k1" {
				return "api key header " + r.Header.Get("X-Api-Key")
			}
			return ""
		}},
		{"oauth", Auth{Type: "OAUTH_CLIENT_CREDENTIALS", Token: "tok"}, func(r *http.Request) string {
			if r.Header.Get("Authorization") != "Bearer tok" {
				return "bearer " + r.Header.Get("Authorization")
			}
			return ""
		}},
	} {
		before := s.count()
		res := iv.Invoke(context.Background(), &Invocation{
			Method: "PUT", Endpoint: s.URL + "/orders/*/items/*/n/*/none/*/obj/*", Path: []string{"$.detail.id", "a b", "$.detail.n", "$.detail.nope", "$.detail"},
			Body: []byte(`{"x":1}`), Event: []byte(event),
			Header: map[string]string{"X-Order": "$.detail.id", "X-Both": "target", "User-Agent": "evil", "Host": "evil.example",
				"X-Missing": "$.detail.nope", "X-Literal": "$notapath", "X-Source": "$.source"},
			Query:      map[string]string{"n": "$.detail.n", "q": "lit", "both": "target", "gone": "$.nope"},
			ConnHeader: []Param{{Key: "X-Both", Value: "connection"}}, ConnQuery: []Param{{Key: "both", Value: "connection"}},
			ConnBody: []Param{{Key: "secret", Value: "s3"}},
			Auth:     tc.auth,
		})
		if !res.OK() || res.Status != 200 || s.count() != before+1 {
			t.Fatalf("%s: %+v", tc.name, res)
		}
		r, body := s.reqs[before], s.body[before]
		if msg := tc.check(r); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
		for k, want := range map[string]string{"User-Agent": UserAgent, "Content-Type": "application/json; charset=utf-8",
			"Range": "bytes=0-1048575", "Accept-Encoding": "gzip,deflate", "X-Order": "o-42", "X-Both": "connection"} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s: header %s = %q, want %q", tc.name, k, got, want)
			}
		}
		if v := r.Header.Values("X-Missing"); len(v) != 1 || v[0] != "" || r.Header.Get("X-Literal") != "$notapath" || r.Header.Get("X-Source") != "shop" {
			t.Errorf("%s: headers %v", tc.name, r.Header)
		}
		if r.Method != "PUT" || r.URL.EscapedPath() != `/orders/o-42/items/a%20b/n/7/none//obj/%7B%22id%22:%22o-42%22%2C%22n%22:7%7D` || r.Host == "evil.example" {
			t.Errorf("%s: %s %s host %s", tc.name, r.Method, r.URL, r.Host)
		}
		if q := r.URL.Query(); q.Get("n") != "7" || q.Get("q") != "lit" || q.Get("both") != "connection" || !q.Has("gone") || q.Get("gone") != "" {
			t.Errorf("%s: query %s", tc.name, r.URL.RawQuery)
		}
		if body != `{"secret":"s3","x":1}` || r.Close {
			t.Errorf("%s: body %s, close %v", tc.name, body, r.Close)
		}
	}
}

// TestInvokeConnections checks that invocations reuse their connections
// by default, and open one each with Connection: close, as EventBridge
// does, when the invoker is set to.
func TestInvokeConnections(t *testing.T) {
	t.Parallel()
	for _, closeEach := range []bool{false, true} {
		var mu sync.Mutex
		conns := map[string]bool{}
		closes := 0
		s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			conns[r.RemoteAddr] = true
			if r.Close {
				closes++
			}
			mu.Unlock()
		}))
		pool := x509.NewCertPool()
		pool.AddCert(s.Certificate())
		iv := NewInvoker(Options{AllowPrivate: true, RootCAs: pool, ConnectionClose: closeEach})
		for range 5 {
			if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: s.URL, Body: []byte(`{}`)}); !res.OK() || res.Status != 200 {
				t.Fatalf("close %v: %+v", closeEach, res)
			}
		}
		s.Close()
		mu.Lock()
		want, wantCloses := 1, 0
		if closeEach {
			want, wantCloses = 5, 5
		}
		if len(conns) != want || closes != wantCloses {
			t.Errorf("close %v: 5 invocations came on %d connections, %d with Connection: close; want %d and %d", closeEach, len(conns), closes, want, wantCloses)
		}
		mu.Unlock()
	}
}

func TestInvokeOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		status     int
		header     map[string]string
		code       string
		retry      bool
		retryAfter time.Duration
		stop       bool
	}{
		{"ok", 204, nil, "", false, 0, false},
		{"server error", 503, nil, CodeErrorFromTarget, true, 0, false},
		{"throttled", 429, map[string]string{"Retry-After": "7"}, CodeThrottling, true, 7 * time.Second, false},
		{"unauthorized", 401, nil, CodeErrorFromTarget, true, 0, false},
		{"proxy auth", 407, nil, CodeErrorFromTarget, true, 0, false},
		{"conflict", 409, nil, CodeErrorFromTarget, true, 0, false},
		{"not found", 404, nil, CodeErrorFromTarget, false, 0, false},
		{"bad request", 400, nil, CodeErrorFromTarget, false, 0, false},
		{"redirect not followed", 302, map[string]string{"Location": "/elsewhere"}, CodeErrorFromTarget, false, 0, false},
		{"negative retry-after", 503, map[string]string{"Retry-After": "-1"}, CodeErrorFromTarget, false, 0, true},
	} {
		s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
			for k, v := range tc.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, "details "+strings.Repeat("x", 2000))
		})
		iv := NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots()})
		res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: s.URL + "/hook?token=secret", Body: []byte(`{}`)})
		if res.Code != tc.code || res.Retry != tc.retry || res.RetryAfter != tc.retryAfter || res.StopRetrying != tc.stop || res.Status != tc.status {
			t.Errorf("%s: %+v", tc.name, res)
		}
		if tc.code != "" && (!strings.Contains(res.Message, "details") || len(res.Message) > 700 || strings.Contains(res.Message, "secret")) {
			t.Errorf("%s: message %q", tc.name, res.Message)
		}
		if s.count() != 1 {
			t.Errorf("%s: %d requests, want 1 (no redirect followed)", tc.name, s.count())
		}
	}
}

func TestRetryAfterDate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	d, stop := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now)
	if d != 90*time.Second || stop {
		t.Errorf("HTTP date: %v %v", d, stop)
	}
	if d, stop := retryAfter("soon", now); d != 0 || stop {
		t.Errorf("garbage: %v %v", d, stop)
	}
}

func TestInvokeFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// A certificate nobody trusts.
	s := newSink(t, nil)
	res := NewInvoker(Options{AllowPrivate: true}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: s.URL})
	if res.Code != CodeConnectionFailure || !res.Retry || !strings.Contains(res.Message, "certificate") || s.count() != 0 {
		t.Errorf("untrusted certificate: %+v", res)
	}

	// Private addresses are refused after resolution, before any request.
	res = NewInvoker(Options{RootCAs: s.roots()}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: s.URL})
	if res.Code != CodeInvalidParameter || res.Retry || !strings.Contains(res.Message, "127.0.0.1") || s.count() != 0 {
		t.Errorf("private address: %+v", res)
	}
	host := strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	res = NewInvoker(Options{RootCAs: s.roots()}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: host})
	if res.Code != CodeInvalidParameter || s.count() != 0 {
		t.Errorf("name resolving to loopback: %+v", res)
	}

	// Plain http is refused before any request unless allowed: the
	// request would carry the connection's credentials in the clear.
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits.Add(1) }))
	defer plain.Close()
	res = NewInvoker(Options{AllowPrivate: true}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: plain.URL, Auth: Auth{Type: "BASIC", Username: "u", Password: "p"}})
	if res.Code != CodeInvalidParameter || res.Retry || !strings.Contains(res.Message, "--allow-http-endpoints") || plainHits.Load() != 0 {
		t.Errorf("plain http: %+v, %d requests", res, plainHits.Load())
	}
	res = NewInvoker(Options{AllowPrivate: true, AllowHTTP: true}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: plain.URL})
	if !res.OK() || plainHits.Load() != 1 {
		t.Errorf("plain http allowed: %+v, %d requests", res, plainHits.Load())
	}

	// Slower than the timeout.
	release := make(chan struct{})
	slow := newSink(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	res = NewInvoker(Options{AllowPrivate: true, RootCAs: slow.roots(), Timeout: 200 * time.Millisecond}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: slow.URL})
	if res.Code != CodeTimeout || !res.Retry {
		t.Errorf("timeout: %+v", res)
	}

	// The connection reset mid-request.
	reset := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
				if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
			}
			conn.Close()
		}
	})
	res = NewInvoker(Options{AllowPrivate: true, RootCAs: reset.roots()}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: reset.URL})
	if res.Code != CodeConnectionFailure || !res.Retry {
		t.Errorf("reset: %+v", res)
	}

	// Nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	res = NewInvoker(Options{AllowPrivate: true}).Invoke(ctx, &Invocation{Method: "POST", Endpoint: "https://" + addr})
	if res.Code != CodeConnectionFailure || !res.Retry {
		t.Errorf("refused: %+v", res)
	}
}

func TestBlocked(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true, "169.254.169.254": true,
		"::1": true, "fd00::1": true, "fe80::1": true, "0.0.0.0": true, "100.64.0.1": true, "::ffff:10.0.0.1": true,
		"8.8.8.8": false, "2606:4700::1111": false, "52.1.2.3": false,
	} {
		if got := blocked(mustAddr(addr)); got != want {
			t.Errorf("blocked(%s) = %v", addr, got)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestRedact(t *testing.T) {
	t.Parallel()
	msg := redact("https://x/ answered 401: bad key k-12345 for user, token tok-999", Auth{APIKeyValue: "k-12345", Token: "tok-999", Password: "pw"}, nil)
	if strings.Contains(msg, "k-12345") || strings.Contains(msg, "tok-999") || !strings.Contains(msg, "answered 401") {
		t.Errorf("redact = %q", msg)
	}
	// An endpoint that echoes the request: Basic credentials (base64),
	// secret connection parameters, an OAuth client secret.
	d := &Destination{Header: []Param{{Key: "X-Secret", Value: "hdr-s3cret", Secret: true}, {Key: "X-Plain", Value: "visible"}},
		Query: []Param{{Key: "sig", Value: "a b&c=d", Secret: true}}, OAuth: &OAuthClient{ClientSecret: "client-s3cret"}}
	echo := "answered 400: Authorization: Basic YWxpY2U6czNjcmV0cHc= X-Secret: hdr-s3cret sig=a+b%26c%3Dd client-s3cret visible"
	msg = redact(echo, Auth{Username: "alice", Password: "s3cretpw"}, d)
	for _, secret := range []string{"YWxpY2U6czNjcmV0cHc=", "hdr-s3cret", "a+b%26c%3Dd", "client-s3cret"} {
		if strings.Contains(msg, secret) {
			t.Errorf("redact left %q in %q", secret, msg)
		}
	}
	if !strings.Contains(msg, "visible") {
		t.Errorf("redact removed a value that is not secret: %q", msg)
	}
}

// TestInvokeEndpointAsWritten checks what Invoke keeps of the endpoint
// itself: credentials in its URL go as basic auth (as net/http's client
// sends them) unless the connection sets Authorization, and its query
// string goes as written when the target and connection add no
// parameters, merged with theirs when they do.
func TestInvokeEndpointAsWritten(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	iv := NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots()})
	ep := strings.Replace(s.URL, "https://", "https://ann:pa%3Ass@", 1) + "/in?b=2&a=1&a=0"
	for i, tc := range []struct {
		inv       Invocation
		user, pwd string
		query     string
	}{
		{Invocation{}, "ann", "pa:ss", "b=2&a=1&a=0"},
		{Invocation{Auth: Auth{Type: "BASIC", Username: "u", Password: "p"}}, "u", "p", "b=2&a=1&a=0"},
		{Invocation{Query: map[string]string{"c": "3"}}, "ann", "pa:ss", "a=1&a=0&b=2&c=3"},
	} {
		inv := tc.inv
		inv.Method, inv.Endpoint, inv.Event = "POST", ep, []byte(event)
		if res := iv.Invoke(context.Background(), &inv); !res.OK() {
			t.Fatalf("%d: %+v", i, res)
		}
		s.mu.Lock()
		r := s.reqs[len(s.reqs)-1]
		s.mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != tc.user || p != tc.pwd {
			t.Errorf("%d: Authorization %q, want basic %s:%s", i, r.Header.Get("Authorization"), tc.user, tc.pwd)
		}
		if r.URL.RawQuery != tc.query {
			t.Errorf("%d: query %q, want %q", i, r.URL.RawQuery, tc.query)
		}
	}
}

// TestInvokeTimeoutCoversBody checks that the invocation's timeout holds
// while its answer's body is read: an endpoint that answers 200 and then
// trickles its body forever does not hold the call.
func TestInvokeTimeoutCoversBody(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
	})
	done := make(chan Result, 1)
	go func() {
		done <- NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots(), Timeout: 300 * time.Millisecond}).
			Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: s.URL})
	}()
	select {
	case res := <-done:
		if !res.OK() { // the status came in time: the answer is the status
			t.Errorf("%+v", res)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the invocation was still reading its answer 20 s after its timeout of 300 ms")
	}
}
