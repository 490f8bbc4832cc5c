package connlimit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serve starts an HTTP server on a loopback port behind a Listener of max
// connections, stopped when the test ends.
func serve(t *testing.T, max int, h http.Handler) (*Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, max)
	srv := &http.Server{Handler: h, ConnState: l.ConnState}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return l, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends a GET on a new connection and returns the status.
func get(addr, path string) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedByServer waits (up to a minute: it never takes that long when it
// happens) for the server to close c.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := c.Read(make([]byte, 1))
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}

func TestIdleMakeRoom(t *testing.T) {
	t.Parallel()
	l, addr := serve(t, 3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	// Three connections that send nothing, the oldest first; each is
	// accepted before the next connects.
	var silent []net.Conn
	for i := range 3 {
		silent = append(silent, dial(t, addr))
		for l.Open() < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	// At the cap, a client with a request gets through, in place of the
	// connection that waited longest.
	if status, err := get(addr, "/"); err != nil || status != 200 {
		t.Fatalf("request at the cap: %d, %v", status, err)
	}
	if !closedByServer(silent[0]) {
		t.Error("the oldest silent connection is still open")
	}
	if l.Evicted() != 1 {
		t.Errorf("evicted %d, want 1", l.Evicted())
	}
	if n := l.Open(); n > 3 {
		t.Errorf("%d connections open, cap 3", n)
	}
}

func TestBusyConnectionsWait(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	inHandler := make(chan struct{}, 2)
	l, addr := serve(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			inHandler <- struct{}{}
			<-release
		}
	}))
	blocked := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := get(addr, "/block")
			blocked <- err
		}()
	}
	<-inHandler
	<-inHandler
	// Both connections have a request in hand: neither is closed, and
	// the next one waits.
	fast := make(chan int, 1)
	go func() {
		status, _ := get(addr, "/")
		fast <- status
	}()
	select {
	case status := <-fast:
		t.Fatalf("a third connection was served (%d) while the cap of 2 was busy", status)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if status := <-fast; status != 200 {
		t.Errorf("after the cap freed: %d", status)
	}
	for range 2 {
		if err := <-blocked; err != nil {
			t.Errorf("a busy connection was cut: %v", err)
		}
	}
	if l.Evicted() > 1 {
		// The third may take the place of one of the first two once it
		// is idle, never of one in a request.
		t.Errorf("evicted %d", l.Evicted())
	}
}
