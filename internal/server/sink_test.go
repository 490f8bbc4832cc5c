package server

import (
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// received is one request a sink got.
type received struct {
	path   string
	header http.Header
	body   string
}

// sink is an HTTPS endpoint that records what it receives and answers with
// the status its policy returns.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status func(n int) int // status for the n-th request (from 0)
	delay  time.Duration   // how long each answer takes
}

func newSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{status: func(int) int { return 200 }}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.got)
		s.got = append(s.got, received{path: r.URL.Path, header: r.Header.Clone(), body: string(body)})
		status, delay := s.status(n), s.delay
		s.mu.Unlock()
		time.Sleep(delay)
		w.WriteHeader(status)
	}))
	// Handshakes refused on purpose (untrusted certificates) are not news.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *sink) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

func (s *sink) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// wait waits until the sink has n requests and returns them.
func (s *sink) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests arrived, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wrapHeader sets a response header before h answers.
func wrapHeader(h http.Handler, key, value string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(key, value)
		h.ServeHTTP(w, r)
	})
}

func (s *sink) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}
