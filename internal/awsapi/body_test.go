package awsapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// front is an API server on a loopback port behind a real http.Server,
// with events (JSON 1.1), sqs (JSON 1.0, 16 MiB bodies) and iam (Query).
type front struct {
	addr  string
	api   *Server
	calls atomic.Int64 // operations run
}

func serveFront(t *testing.T, readTimeout time.Duration, budget *Budget) *front {
	t.Helper()
	f := &front{}
	op := func(ctx context.Context, body []byte) (any, error) {
		f.calls.Add(1)
		return struct{}{}, nil
	}
	f.api = &Server{
		Verifier: testVerifier(),
		Services: []*JSONService{
			{SigningName: "events", TargetPrefix: "AWSEvents", Version: "1.1", Operations: map[string]JSONOperation{"ListRules": op}},
			{SigningName: "sqs", TargetPrefix: "AmazonSQS", Version: "1.0", Operations: map[string]JSONOperation{"SendMessage": op}, MaxBody: 16 << 20},
		},
		Query: []*QueryService{{SigningName: "iam", SigningRegion: "us-east-1", Version: "2010-05-08", Operations: map[string]QueryOperation{
			"ListRoles": func(ctx context.Context, p Params) (any, error) { f.calls.Add(1); return nil, nil },
		}}},
		MaxBody: 1 << 20,
		Budget:  budget,
	}
	srv := httptest.NewUnstartedServer(f.api)
	srv.Config.ReadHeaderTimeout = readTimeout
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	f.addr = srv.Listener.Addr().String()
	return f
}

// head is the request line and headers of r, announcing a body of n
// bytes.
func head(r *http.Request, n int64) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.Method, r.Host, n)
	r.Header.Del("Content-Length")
	_ = r.Header.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// send writes p on a new connection to addr, closed when the test ends.
func send(t *testing.T, addr string, p []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer reads the response on c. The minute is a guard against a hang,
// never reached when the server answers.
func answer(t *testing.T, c net.Conn) (*http.Response, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestRefusedBeforeBody sends only the headers of requests announcing
// 8 MiB bodies: every request whose headers cannot be right is answered
// without a byte of its body, so it costs the server its headers only.
func TestRefusedBeforeBody(t *testing.T) {
	t.Parallel()
	f := serveFront(t, time.Minute, NewBudget(1<<20))
	const big = 8 << 20
	json := func(target, service, key string, at time.Time) *http.Request {
		r, _ := signed(t, `{}`, key, sigSecret, service, "us-east-1", at, func(r *http.Request) {
			r.Header.Set("X-Amz-Target", target)
		})
		return r
	}
	query := func(key string) *http.Request {
		r, _ := signed(t, "Action=ListRoles&Version=2010-05-08", key, sigSecret, "iam", "us-east-1", sigNow, func(r *http.Request) {
			r.Header.Del("X-Amz-Target")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		})
		return r
	}
	unsigned := func(r *http.Request) { r.Header.Del("Authorization") }
	for _, tc := range []struct {
		name   string
		req    *http.Request
		change func(*http.Request) // after signing
		size   int64
		status int
		code   string
	}{
		{"unsigned", json("AmazonSQS.SendMessage", "sqs", sigKey, sigNow), unsigned, big, 400, "MissingAuthenticationTokenException"},
		{"malformed authorization", json("AmazonSQS.SendMessage", "sqs", sigKey, sigNow), func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		}, big, 400, "IncompleteSignatureException"},
		{"unknown key", json("AmazonSQS.SendMessage", "sqs", "AKIDUNKNOWN", sigNow), nil, big, 400, "UnrecognizedClientException"},
		{"expired", json("AmazonSQS.SendMessage", "sqs", sigKey, sigNow.Add(-time.Hour)), nil, big, 400, "InvalidSignatureException"},
		{"other service's scope", json("AmazonSQS.SendMessage", "events", sigKey, sigNow), nil, big, 400, "InvalidSignatureException"},
		{"unknown target", json("Nope.SendMessage", "sqs", sigKey, sigNow), nil, big, 400, "UnknownOperationException"},
		{"announced over the limit", json("AWSEvents.ListRules", "events", sigKey, sigNow), nil, 2 << 20, 413, "RequestEntityTooLargeException"},
		{"small body", json("AWSEvents.ListRules", "events", sigKey, sigNow.Add(-time.Hour)), nil, 1 << 10, 400, "InvalidSignatureException"},
		{"query unsigned", query(sigKey), unsigned, 1 << 20, 403, "MissingAuthenticationToken"},
		{"query unknown key", query("AKIDUNKNOWN"), nil, 1 << 10, 403, "InvalidClientTokenId"},
		{"query over the limit", query(sigKey), nil, 2 << 20, 413, "ValidationError"},
	} {
		if tc.change != nil {
			tc.change(tc.req)
		}
		c := send(t, f.addr, head(tc.req, tc.size))
		resp, body := answer(t, c)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.code)
		}
		// Nor is it read after the answer: the server hangs up.
		if !resp.Close {
			t.Errorf("%s: the connection is kept after refusing a %d-byte body", tc.name, tc.size)
		}
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("%d operations ran", n)
	}
	if n := f.api.Budget.InUse(); n != 0 {
		t.Errorf("%d body bytes still held", n)
	}
}

// trickle writes p one byte every 50 ms until it is written or the
// connection fails.
func trickle(c net.Conn, p []byte) {
	for i := range p {
		if _, err := c.Write(p[i : i+1]); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadDeadline sends requests one byte every 50 ms to a server whose
// read timeout is 300 ms: each is cut off long before it could finish
// (1,000 bytes take 50 s), and a slow body gets its answer.
func TestReadDeadline(t *testing.T) {
	t.Parallel()
	f := serveFront(t, 300*time.Millisecond, NewBudget(1<<20))
	body := strings.Repeat("x", 1000)
	req, _ := signed(t, body, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)

	// The body.
	c := send(t, f.addr, head(req, int64(len(body))))
	go trickle(c, []byte(body))
	resp, got := answer(t, c)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(got, "RequestTimeoutException") {
		t.Errorf("slow body: %d %s", resp.StatusCode, got)
	}

	// The headers: net/http hangs up without an answer.
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go trickle(c, head(req, int64(len(body))))
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if got, err := io.ReadAll(c); err != nil {
		t.Errorf("slow headers: read %q, %v; want the connection closed", got, err)
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("%d operations ran", n)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestBodyBudget fills the body budget with a body that stalls one byte
// short, from a client that knows an access key but not its secret: a
// signed request that finds no room within a second is answered 503, and
// one after the stalled client went away gets through.
func TestBodyBudget(t *testing.T) {
	t.Parallel()
	const size = 64 << 10
	f := serveFront(t, time.Minute, NewBudget(size))
	body := strings.Repeat("x", size)
	forged, _ := signed(t, body, sigKey, "not-the-secret", "events", "us-east-1", sigNow, nil)
	c := send(t, f.addr, append(head(forged, size), body[1:]...))
	for f.api.Budget.InUse() < size {
		time.Sleep(time.Millisecond)
	}
	call := func() (int, string) {
		req, body := signed(t, `{}`, sigKey, sigSecret, "events", "us-east-1", sigNow, nil)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.URL.Host = f.addr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	if status, got := call(); status != http.StatusServiceUnavailable || !strings.Contains(got, "ServiceUnavailableException") {
		t.Errorf("with the budget held: %d %s", status, got)
	}
	if f.api.Budget.Refused() != 1 {
		t.Errorf("refused %d", f.api.Budget.Refused())
	}
	c.Close()
	for f.api.Budget.InUse() > 0 {
		time.Sleep(time.Millisecond)
	}
	if status, got := call(); status != http.StatusOK {
		t.Errorf("after the stalled client went away: %d %s", status, got)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d operations ran, want 1", n)
	}
}

func TestBudget(t *testing.T) {
	t.Parallel()
	b := NewBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60, 0); err != nil {
		t.Fatal(err)
	}
	// 50 does not fit; 40, asked for later, does, and is not held back.
	big := make(chan error, 1)
	go func() { big <- b.acquire(ctx, 50, 0) }()
	for b.waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := b.acquire(ctx, 40, 0); err != nil || b.InUse() != 100 {
		t.Fatalf("acquire 40: %v, in use %d", err, b.InUse())
	}
	b.release(60)
	if err := <-big; err != nil || b.InUse() != 90 {
		t.Fatalf("acquire 50: %v, in use %d", err, b.InUse())
	}
	// A wait that ends takes nothing.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 20, 0); err == nil || b.InUse() != 90 || b.waiting() != 0 {
		t.Fatalf("acquire past the deadline: %v, in use %d", err, b.InUse())
	}
	b.release(90)
	// More than the whole budget, alone.
	if err := b.acquire(ctx, 500, 0); err != nil || b.InUse() != 500 {
		t.Fatalf("acquire 500 alone: %v", err)
	}
	b.release(500)
	var nilBudget *Budget
	if err := nilBudget.acquire(ctx, 1<<40, 0); err != nil || nilBudget.InUse() != 0 {
		t.Fatal("a nil budget bounds nothing")
	}
	nilBudget.release(1 << 40)
}
