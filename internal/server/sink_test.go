package server

import (
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// received is one request a sink got.
type received struct {
	path   string
	query  url.Values
	header http.Header
	body   string
	at     time.Time // when it arrived
}

// sink is an HTTPS endpoint that records what it receives and answers with
// the status its policy returns.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status func(n int) int // status for the n-th request (from 0)
	delay  time.Duration   // how long each answer takes
	hold   chan struct{}   // when set, answers wait until it is closed
	// abandoned counts the requests whose caller hung up before the answer.
	abandoned int
}

func newSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{status: func(int) int { return 200 }}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.got)
		s.got = append(s.got, received{path: r.URL.EscapedPath(), query: r.URL.Query(), header: r.Header.Clone(), body: string(body), at: time.Now()})
		status, delay, hold := s.status(n), s.delay, s.hold
		s.mu.Unlock()
		gaveUp := func() { // the caller hung up
			s.mu.Lock()
			s.abandoned++
			s.mu.Unlock()
		}
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				gaveUp()
				return
			}
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			gaveUp()
			return
		}
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
	return s.waitUntil(t, func(got []received) (bool, string) {
		return len(got) >= n, fmt.Sprintf("%d requests arrived, want %d", len(got), n)
	})
}

// waitEvents waits until every event of ids has arrived in a request from
// the from-th on.
func (s *sink) waitEvents(t *testing.T, ids map[string]bool, from int) {
	t.Helper()
	s.waitUntil(t, func(got []received) (bool, string) {
		seen, missing := eventIDs(got[min(from, len(got)):]), 0
		for id := range ids {
			if !seen[id] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d events not delivered", missing, len(ids))
	})
}

// waitUntil waits until done holds for the requests so far, and returns
// them, as long as requests keep arriving: it fails (with what done last
// said) after a minute without a new one, not after a fixed time, so a slow
// machine or a low rate limit only makes it longer.
func (s *sink) waitUntil(t *testing.T, done func([]received) (bool, string)) []received {
	t.Helper()
	arrived, progress := 0, time.Now()
	for {
		got := s.received()
		ok, state := done(got)
		if ok {
			return got
		}
		if len(got) > arrived {
			arrived, progress = len(got), time.Now()
		}
		if time.Since(progress) > time.Minute {
			t.Fatalf("%s, and no request for a minute", state)
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
