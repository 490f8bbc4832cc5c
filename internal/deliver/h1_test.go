package deliver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", bodyLimit+10)
	for _, tc := range []struct {
		name, raw  string
		head       bool
		status     int
		retryAfter string
		excerpt    string
		keep       bool
		rest       string // what must be left unread on the connection
		err        string
	}{
		{name: "length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", status: 200, keep: true, rest: "NEXT"},
		{name: "error body kept", raw: "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy", status: 503, retryAfter: "7", excerpt: "busy", keep: true},
		{name: "bare LF", raw: "HTTP/1.1 404 Not Found\nContent-Length: 2\n\nnoNEXT", status: 404, excerpt: "no", keep: true, rest: "NEXT"},
		{name: "no reason", raw: "HTTP/1.1 204\r\n\r\nNEXT", status: 204, keep: true, rest: "NEXT"},
		{name: "chunked with trailer", raw: "HTTP/1.1 500 x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\nNEXT",
			status: 500, excerpt: "abcde", keep: true, rest: "NEXT"},
		{name: "interim responses", raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
			status: 201, keep: true},
		{name: "until close", raw: "HTTP/1.1 502 Bad Gateway\r\n\r\nthe end", status: 502, excerpt: "the end"},
		{name: "1.0 closes", raw: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "1.0 keep-alive", raw: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", status: 200, keep: true},
		{name: "connection close", raw: "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "both framings", raw: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", status: 200},
		{name: "head", raw: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nNEXT", head: true, status: 200, keep: true, rest: "NEXT"},
		{name: "switching protocols", raw: "HTTP/1.1 101 Switching Protocols\r\n\r\n", status: 101},
		{name: "body past the limit", raw: "HTTP/1.1 400 Bad\r\nContent-Length: " + strconv.Itoa(len(long)) + "\r\n\r\n" + long, status: 400, excerpt: long[:excerptLen],
			rest: long[bodyLimit:]},
		{name: "body short of its length", raw: "HTTP/1.1 500 x\r\nContent-Length: 10\r\n\r\nabc", status: 500, excerpt: "abc"},
		{name: "chunked cut short", raw: "HTTP/1.1 500 x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", status: 500, excerpt: "ab"},
		{name: "two lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", err: "two Content-Lengths"},
		{name: "bad length", raw: "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\na", err: "Content-Length"},
		{name: "not http", raw: "SSH-2.0-OpenSSH\r\n\r\n", err: "status line"},
		{name: "http/2 preface", raw: "HTTP/2 200\r\n\r\n", err: "status line"},
		{name: "status letters", raw: "HTTP/1.1 2x0 OK\r\n\r\n", err: "status code"},
		{name: "folded header", raw: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", err: "header line"},
		{name: "space before colon", raw: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", err: "header line"},
		{name: "header too large", raw: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("z", headerLimit) + "\r\n\r\n", err: "header larger"},
		{name: "nothing", raw: "", err: "EOF"},
		{name: "cut in the header", raw: "HTTP/1.1 200 OK\r\nContent-Le", err: "unexpected EOF"},
	} {
		br := bufio.NewReaderSize(strings.NewReader(tc.raw), 4096)
		var ex [excerptLen]byte
		answered := false
		resp, keep, err := readResponse(br, ex[:], tc.head, func() { answered = true })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || keep {
				t.Errorf("%s: %v, keep %v; want an error with %q", tc.name, err, keep, tc.err)
			}
			if answered != (tc.raw != "") {
				t.Errorf("%s: answered %v", tc.name, answered)
			}
			continue
		}
		if err != nil || resp.status != tc.status || resp.retryAfter != tc.retryAfter || string(resp.excerpt) != tc.excerpt || keep != tc.keep || !answered {
			t.Errorf("%s: status %d, retry-after %q, excerpt %q, keep %v, answered %v, %v", tc.name, resp.status, resp.retryAfter, resp.excerpt, keep, answered, err)
		}
		if tc.keep {
			if rest, _ := io.ReadAll(br); string(rest) != tc.rest {
				t.Errorf("%s: %q left, want %q", tc.name, rest, tc.rest)
			}
		}
	}
}

// FuzzReadResponse: whatever a server sends, reading it ends without a
// panic, keeps at most the excerpt, and reports a status only with a
// valid one.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.0 429 Too Many\r\nRetry-After: 3\r\nConnection: keep-alive\r\n\r\nslow down",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		br := bufio.NewReaderSize(bytes.NewReader(raw), 4096)
		var ex [excerptLen]byte
		resp, keep, err := readResponse(br, ex[:], head, nil)
		if err != nil {
			if keep {
				t.Fatalf("keep after %v", err)
			}
			return
		}
		if resp.status < 100 || resp.status > 999 || len(resp.excerpt) > excerptLen {
			t.Fatalf("status %d, excerpt of %d", resp.status, len(resp.excerpt))
		}
	})
}

// rawServer answers the nth request on a connection with serve, which
// writes the answer as it likes and says whether to go on (the body is
// read after it, if it goes on); it counts connections and requests.
type rawServer struct {
	ln          net.Listener
	conns, reqs atomic.Int32
}

type serveFunc func(n int, req *http.Request, c net.Conn) bool

func newRawServer(t *testing.T, serve serveFunc) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveRaw(t, ln, serve)
}

// serveRaw is newRawServer on a listener of the caller's (TLS).
func serveRaw(t *testing.T, ln net.Listener, serve serveFunc) *rawServer {
	s := &rawServer{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					s.reqs.Add(1)
					if !serve(n, req, c) {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
				}
			}()
		}
	}()
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/" }

const ok200 = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

// A server that closes a kept connection after its answer, and one that
// closes it on the next request without answering: the next invocation
// goes through on a new connection, sent once more at most.
func TestInvokeKeptConnectionClosed(t *testing.T) {
	t.Parallel()
	iv := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})
	// Found closed by the check before reuse.
	closesAfter := newRawServer(t, func(n int, _ *http.Request, c net.Conn) bool {
		_, _ = io.WriteString(c, ok200)
		return false
	})
	for i := range 5 {
		if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: closesAfter.url(), Body: []byte(`{}`)}); !res.OK() {
			t.Fatalf("closed after answering, invocation %d: %+v", i, res)
		}
		time.Sleep(10 * time.Millisecond) // the close reaches the client
	}
	if r, c := closesAfter.reqs.Load(), closesAfter.conns.Load(); r != 5 || c != 5 {
		t.Errorf("closed after answering: %d requests on %d connections, want 5 on 5", r, c)
	}

	dropsSecond := newRawServer(t, func(n int, _ *http.Request, c net.Conn) bool {
		if n > 0 {
			return false // the request read, no answer, the connection closed
		}
		_, _ = io.WriteString(c, ok200)
		return true
	})
	for i := range 3 {
		if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: dropsSecond.url(), Body: []byte(`{}`)}); !res.OK() {
			t.Fatalf("closed instead of answering, invocation %d: %+v", i, res)
		}
	}
	// 1: answered; 2: dropped, sent again on a new connection and
	// answered; 3: the same.
	if r, c := dropsSecond.reqs.Load(), dropsSecond.conns.Load(); r != 5 || c != 3 {
		t.Errorf("closed instead of answering: %d requests on %d connections, want 5 on 3", r, c)
	}

	// A fresh connection that closes without answering is a failure, not
	// sent again.
	silent := newRawServer(t, func(int, *http.Request, net.Conn) bool { return false })
	res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: silent.url()})
	if res.Code != CodeConnectionFailure || !res.Retry || silent.reqs.Load() != 1 {
		t.Errorf("silent server: %+v after %d requests", res, silent.reqs.Load())
	}
}

// Header values from an event cannot add header fields of their own.
func TestInvokeHeaderInjection(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(int, *http.Request, net.Conn) bool { return false })
	iv := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})
	for _, inv := range []*Invocation{
		{Method: "POST", Endpoint: srv.url(), Header: map[string]string{"X-Id": "$.detail.id"}, Event: []byte(`{"detail":{"id":"a\r\nX-Evil: 1"}}`)},
		{Method: "POST", Endpoint: srv.url(), ConnHeader: []Param{{Key: "X-Bad Name", Value: "v"}}},
		{Method: "POST", Endpoint: srv.url(), Auth: Auth{Type: "API_KEY", APIKeyName: "X-Key", APIKeyValue: "k\n"}},
		{Method: "PO ST", Endpoint: srv.url()},
		// An API key named as a header that frames the request.
		{Method: "POST", Endpoint: srv.url(), Body: []byte("0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"),
			Auth: Auth{Type: "API_KEY", APIKeyName: "transfer-encoding", APIKeyValue: "chunked"}},
		{Method: "POST", Endpoint: srv.url(), Auth: Auth{Type: "API_KEY", APIKeyName: "Host", APIKeyValue: "elsewhere.example"}},
	} {
		res := iv.Invoke(context.Background(), inv)
		if res.Code != CodeInvalidParameter || res.Retry || strings.Contains(res.Message, "Evil") && !strings.Contains(res.Message, "X-Id") {
			t.Errorf("%+v: %+v", inv, res)
		}
	}
	if n := srv.conns.Load(); n != 0 {
		t.Errorf("%d connections made for requests that cannot be written", n)
	}
}

// Many invocations at once over TLS share kept connections, one request
// at a time on each; a connection idle past the idle timeout is closed.
func TestH1ConcurrentAndIdle(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns := map[string]bool{}
	var inFlight, most atomic.Int32
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"n":1}` || r.Host == "" || r.URL.RawQuery != "a=1" {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Transfer-Encoding", "chunked")
		_, _ = io.WriteString(w, strings.Repeat("ok", 3000))
	}))
	var closed atomic.Int32
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed.Add(1)
		}
	}
	s.StartTLS()
	defer s.Close()
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	iv := NewInvoker(Options{AllowPrivate: true, RootCAs: pool})
	iv.h1.idleTimeout = 2 * time.Second // long enough that no caller idles it out between its calls on a busy machine
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: s.URL + "/p?a=1", Body: []byte(`{"n":1}`)}); !res.OK() {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	n := len(conns)
	mu.Unlock()
	if failed.Load() != 0 || n > 20 || most.Load() > 20 {
		t.Errorf("%d of 500 failed; %d connections, %d requests at once (20 callers)", failed.Load(), n, most.Load())
	}
	deadline := time.Now().Add(10 * time.Second)
	for int(closed.Load()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if int(closed.Load()) != n {
		t.Errorf("%d of %d idle connections closed after the idle timeout", closed.Load(), n)
	}
	// The pool itself goes once it keeps nothing.
	for time.Now().Before(deadline) {
		iv.h1.mu.Lock()
		n := len(iv.h1.pools)
		iv.h1.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	iv.h1.mu.Lock()
	for _, p := range iv.h1.pools {
		t.Errorf("pool %s kept with %d idle connections", p.key, len(p.idle))
	}
	iv.h1.mu.Unlock()
	// And a new one serves the next request.
	if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: s.URL + "/p?a=1", Body: []byte(`{"n":1}`)}); !res.OK() {
		t.Errorf("after the sweep: %+v", res)
	}
}

// Bodies larger than one write arrive whole, on the kept connection.
func TestInvokeLargeBody(t *testing.T) {
	t.Parallel()
	s := newSink(t, nil)
	iv := NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots()})
	var want []string
	for _, n := range []int{10, oneWrite - 300, oneWrite + 1, 256 << 10, 10} {
		body := `{"d":"` + strings.Repeat("b", n) + `"}`
		want = append(want, body)
		if res := iv.Invoke(context.Background(), &Invocation{Method: "PUT", Endpoint: s.URL + "/big", Body: []byte(body)}); !res.OK() {
			t.Fatalf("%d bytes: %+v", n, res)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := map[string]bool{}
	for i, r := range s.reqs {
		conns[r.RemoteAddr] = true
		if s.body[i] != want[i] || r.ContentLength != int64(len(want[i])) || r.Method != "PUT" {
			t.Errorf("request %d: %s with %d bytes (Content-Length %d), want %d", i, r.Method, len(s.body[i]), r.ContentLength, len(want[i]))
		}
	}
	if len(s.reqs) != len(want) || len(conns) != 1 {
		t.Errorf("%d requests on %d connections, want %d on 1", len(s.reqs), len(conns), len(want))
	}
}

// Bytes no request asked for (a body longer than its Content-Length, in
// the same write or in the same TLS record, or a second answer sent
// later) are never read as the next request's answer: the connection is
// not used again.
func TestInvokeStrayBytes(t *testing.T) {
	t.Parallel()
	const stray = "HTTP/1.1 500 Stray\r\nContent-Length: 0\r\n\r\n"
	for name, first := range map[string]func(c net.Conn){
		"same write": func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n"+strings.Repeat("a", 8192)+stray)
		},
		"later": func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			time.Sleep(30 * time.Millisecond)
			_, _ = io.WriteString(c, stray)
		},
	} {
		written := make(chan struct{}, 1) // the first answer, stray bytes and all
		var once atomic.Bool
		srv := newRawServer(t, func(n int, _ *http.Request, c net.Conn) bool {
			if once.CompareAndSwap(false, true) { // the first connection's first answer
				first(c)
				written <- struct{}{}
			} else {
				_, _ = io.WriteString(c, ok200)
			}
			return true
		})
		iv := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})
		for i := range 3 {
			if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: srv.url(), Body: []byte(`{}`)}); !res.OK() {
				t.Errorf("%s: invocation %d: %+v", name, i, res)
			}
			if i == 0 {
				<-written
				time.Sleep(20 * time.Millisecond) // across the loopback
			}
		}
		if c := srv.conns.Load(); c != 2 {
			t.Errorf("%s: %d connections, want 2 (the first one not used again)", name, c)
		}
	}

	// Over TLS, the stray answer in the same record as the real one.
	s := newSink(t, nil)
	s.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: s.TLS.Certificates})
	if err != nil {
		t.Fatal(err)
	}
	serveRaw(t, ln, func(n int, _ *http.Request, c net.Conn) bool {
		answer := ok200
		if n == 0 {
			answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + stray
		}
		_, _ = io.WriteString(c, answer) // one write, one record
		return true
	})
	iv := NewInvoker(Options{AllowPrivate: true, RootCAs: s.roots()})
	for i := range 3 {
		if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: "https://" + ln.Addr().String() + "/"}); !res.OK() {
			t.Errorf("TLS: invocation %d: %+v", i, res)
		}
	}
}

// A host's pool stays while a call uses it, even past the idle timeout
// of its other connections, and goes once nothing uses it: also when it
// never kept a connection (Connection: close, or nothing listening).
func TestH1PoolLifetime(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(n int, _ *http.Request, c net.Conn) bool {
		if n == 1 {
			time.Sleep(1500 * time.Millisecond)
		}
		_, _ = io.WriteString(c, ok200)
		return true
	})
	iv := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})
	iv.h1.idleTimeout = time.Second
	for i := range 3 {
		if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: srv.url()}); !res.OK() {
			t.Fatalf("invocation %d: %+v", i, res)
		}
	}
	if r, c := srv.reqs.Load(), srv.conns.Load(); r != 3 || c != 1 {
		t.Errorf("%d requests on %d connections, want 3 on 1", r, c)
	}

	closing := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true, ConnectionClose: true, Timeout: time.Second})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()
	for i := range 10 {
		other := newRawServer(t, func(n int, _ *http.Request, c net.Conn) bool { _, _ = io.WriteString(c, ok200); return true })
		if res := closing.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: other.url()}); !res.OK() {
			t.Errorf("host %d: %+v", i, res)
		}
		if res := closing.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: "http://" + refused + "/"}); res.Code != CodeConnectionFailure {
			t.Errorf("refused: %+v", res)
		}
	}
	closing.h1.mu.Lock()
	defer closing.h1.mu.Unlock()
	if n := len(closing.h1.pools); n != 0 {
		t.Errorf("%d pools kept for hosts that keep no connection", n)
	}
}

// A server that answers before it has read the whole request and closes
// (413 here): its answer is the outcome, not the failed write.
func TestInvokeEarlyAnswer(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, func(n int, _ *http.Request, c net.Conn) bool {
		_, _ = io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		return false // closed with the body unread
	})
	iv := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})
	res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: srv.url(), Body: make([]byte, 8<<20)})
	if res.Status != 413 || res.Code != CodeErrorFromTarget || res.Retry {
		t.Errorf("%+v", res)
	}
}

// An IPv6 literal endpoint: dialled with its brackets, sent as the Host.
func TestInvokeIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	var host atomic.Value
	srv := serveRaw(t, ln, func(n int, req *http.Request, c net.Conn) bool {
		host.Store(req.Host)
		_, _ = io.WriteString(c, ok200)
		return true
	})
	iv := NewInvoker(Options{AllowPrivate: true, AllowHTTP: true})
	for range 2 {
		if res := iv.Invoke(context.Background(), &Invocation{Method: "POST", Endpoint: srv.url() + "x"}); !res.OK() {
			t.Fatalf("%+v", res)
		}
	}
	if got, want := host.Load(), ln.Addr().String(); got != want || srv.conns.Load() != 1 {
		t.Errorf("Host %v, want %s; %d connections", got, want, srv.conns.Load())
	}
}
