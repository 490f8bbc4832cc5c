package server

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"bridgeport/internal/config"
)

// switchable is an endpoint that answers 200 at once until hang is
// called; from then on its calls wait until release (or until the caller
// gives up), then answer 200. It records the event ids it was sent.
type switchable struct {
	*httptest.Server
	mu       sync.Mutex
	hanging  bool
	inFlight int
	got      []received
	release  chan struct{}
}

func newSwitchable(t *testing.T) *switchable {
	s := &switchable{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, received{body: string(body), at: time.Now()})
		hang := s.hanging
		if hang {
			s.inFlight++
		}
		s.mu.Unlock()
		if hang {
			select {
			case <-s.release:
			case <-r.Context().Done():
			}
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}
	}))
	t.Cleanup(func() {
		s.unhang()
		s.Close()
	})
	return s
}

func (s *switchable) hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hanging = true
}

// unhang answers the calls that hang and those to come.
func (s *switchable) unhang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hanging {
		s.hanging = false
		close(s.release)
	}
}

func (s *switchable) state() (got []received, inFlight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...), s.inFlight
}

// directEnv is a delivery env whose server allows plain-HTTP endpoints and
// waits an hour for an invocation, with a rule "<name>" sending every
// event of source <name> whole to url.
func directEnv(t *testing.T, opts ...func(*config.Config)) *deliveryEnv {
	d := setupDelivery(t, func(int) int { return 200 }, nil, opts...)
	d.srv.Stop(ctx)
	d.srv = nil
	d.cfg.AllowHTTPEndpoints, d.cfg.InvokeTimeout = true, time.Hour
	srv, err := Start(ctx, d.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.srv, d.eb = srv, newClient(srv)
	return d
}

func (d *deliveryEnv) ruleTo(name, url string) {
	d.t.Helper()
	dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String(name), ConnectionArn: aws.String(d.conn),
		InvocationEndpoint: aws.String(url), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil {
		d.t.Fatal(err)
	}
	d.addRule(name, `{"source":["`+name+`"]}`)
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name), Targets: []types.Target{{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole()}}}); err != nil {
		d.t.Fatal(err)
	}
}

// putFrom puts n events of source, ten to a call, and returns their ids.
func (d *deliveryEnv) putFrom(source string, n int) map[string]bool {
	d.t.Helper()
	ids := map[string]bool{}
	for n > 0 {
		var entries []types.PutEventsRequestEntry
		for range min(n, 10) {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String(source), DetailType: aws.String("x"), Detail: aws.String(`{"n":1}`)})
		}
		out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil || out.FailedEntryCount != 0 {
			d.t.Fatalf("PutEvents: %+v %v", out, err)
		}
		for _, e := range out.Entries {
			ids[aws.ToString(e.EventId)] = true
		}
		n -= len(entries)
	}
	return ids
}

// TestRouterDeliversDirectly: once a destination has answered, the router
// sends the first attempts of its events itself instead of queueing jobs
// (routed_jobs_total by path says which), and each event arrives once.
func TestRouterDeliversDirectly(t *testing.T) {
	t.Parallel()
	d := directEnv(t)
	target := newSwitchable(t)
	d.ruleTo("a", target.URL)
	first := d.putFrom("a", 1)
	d.waitInvocations("a", 1) // the destination has answered
	ids := d.putFrom("a", 50)
	waitFor(t, func() bool { got, _ := target.state(); return len(got) >= 51 })
	d.waitRouted()
	got, _ := target.state()
	seen := idCounts(got)
	for id := range first {
		ids[id] = true
	}
	if len(got) != 51 || len(seen) != 51 {
		t.Fatalf("%d requests of %d events, want 51 of 51", len(got), len(seen))
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("event %s arrived %d times", id, seen[id])
		}
	}
	m := scrape(t, d.srv.Addr())
	direct, queued := m[`bridgeport_routed_jobs_total{path="direct"}`], m[`bridgeport_routed_jobs_total{path="queued"}`]
	// The first went through the jobs stream (the destination had not
	// answered yet); of the 50 after it, at least the first message's
	// ten were sent directly (the rest too, unless the router had
	// several messages at once and the destination's 16 calls in flight
	// were taken).
	if direct+queued != 51 || direct < 10 {
		t.Errorf("routed_jobs_total: direct %v, queued %v; want 51 in all, 10 or more direct", direct, queued)
	}
}

// waitInvocations waits until rule's invocations (ended, delivered or
// not) number n.
func (d *deliveryEnv) waitInvocations(rule string, n int) {
	d.t.Helper()
	waitFor(d.t, func() bool {
		return scrape(d.t, d.srv.Addr())[`bridgeport_invocations_total{bus="default",rule="`+rule+`"}`] >= float64(n)
	})
}

// waitRouted waits until every event stored is routed and its message
// settled: any event offered again has been delivered again by then.
func (d *deliveryEnv) waitRouted() {
	d.t.Helper()
	waitFor(d.t, func() bool {
		depths, err := d.srv.store.PipelineDepths(ctx)
		return err == nil && depths.Unrouted == 0
	})
}

// idCounts returns how many times each event, sent whole, came in got.
func idCounts(got []received) map[string]int {
	n := map[string]int{}
	for _, r := range got {
		var ev struct{ ID string }
		if json.Unmarshal([]byte(r.body), &ev) == nil && ev.ID != "" {
			n[ev.ID]++
		}
	}
	return n
}

// TestHangingDestinationDoesNotHoldRouter: a destination that answered in
// a millisecond, and so gets its events straight from the router, starts
// to hang (the invocation timeout is an hour). Its calls in flight hold at
// most its share of the router's direct deliveries; the router goes on
// routing, a healthy destination gets its events while they hang, and once
// the hanging destination answers again every one of its events arrives:
// none was lost in the router's hands.
func TestHangingDestinationDoesNotHoldRouter(t *testing.T) {
	t.Parallel()
	d := directEnv(t)
	hanging, healthy := newSwitchable(t), newSwitchable(t)
	d.ruleTo("h", hanging.URL)
	d.ruleTo("ok", healthy.URL)
	warm := d.putFrom("h", 10)
	d.waitInvocations("h", 10)
	hanging.hang()
	// One event a call, so that each call held is a message held: as
	// many as the router's 16 workers at least (16 calls in flight, or 64
	// if its calls were fast enough on this machine), which a router that
	// waited for its deliveries would be stuck on.
	ids := map[string]bool{}
	for range 300 {
		maps.Copy(ids, d.putFrom("h", 1))
	}
	waitFor(t, func() bool { _, n := hanging.state(); return n >= 16 })
	okIDs := d.putFrom("ok", 30)
	waitFor(t, func() bool { got, _ := healthy.state(); return len(got) >= 30 })
	got, n := hanging.state()
	if n == 0 {
		t.Fatal("the hanging destination's calls ended before the test let them")
	}
	if n > 64+16 {
		t.Errorf("%d calls in flight to the hanging destination, more than its 64 fast calls and 16 of the shared workers", n)
	}
	t.Logf("the healthy destination's 30 events delivered while %d calls hung (%d made)", n, len(got))
	healthyGot, _ := healthy.state()
	if seen := eventIDs(healthyGot); len(seen) != len(okIDs) {
		t.Errorf("healthy destination got %d of %d events", len(seen), len(okIDs))
	}
	hanging.unhang()
	for id := range warm {
		ids[id] = true
	}
	waitFor(t, func() bool {
		got, _ := hanging.state()
		seen := eventIDs(got)
		for id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	})
	if m := scrape(t, d.srv.Addr()); m[`bridgeport_routed_jobs_total{path="direct"}`] == 0 {
		t.Error("no job routed directly")
	}
}

// TestRetriedBatchNotDeliveredTwice: a PutEvents call's events are routed
// together, and offered again together while one of them cannot be routed
// yet (here its matching runs out of time, twice, before it is set aside).
// The router starts no delivery of such a batch itself: its jobs are
// queued, and their message ids make the second and third routing no-ops,
// so each of the other events arrives once.
func TestRetriedBatchNotDeliveredTwice(t *testing.T) {
	t.Parallel()
	d := directEnv(t, func(c *config.Config) { c.MatchTimeout = time.Nanosecond })
	target := newSwitchable(t)
	d.ruleTo("a", target.URL)
	d.addRule("wide", `{"source":["w"],"detail":{"x":[2]}}`)
	d.putFrom("a", 1)
	d.waitInvocations("a", 1)
	out := d.putOneAndNine("w", `{"x":[`+strings.Repeat("1,", 20000)+`2]}`, "a")
	waitFor(t, func() bool {
		sum, err := d.srv.store.Aside(ctx, "default")
		return err == nil && sum.Count == 1
	})
	waitFor(t, func() bool { got, _ := target.state(); return len(got) >= 10 })
	d.waitRouted()
	got, _ := target.state()
	checkOnce(t, got, out.Entries[1:])
}

// TestDirectJobQueuedAtShutdown: a call the router started is still in
// flight when the server stops and its grace runs out. Its job is queued,
// and delivered after the restart; the other events of its PutEvents call,
// delivered already, are not sent again.
func TestDirectJobQueuedAtShutdown(t *testing.T) {
	t.Parallel()
	d := directEnv(t, func(c *config.Config) { c.Quotas.ShutdownGraceTime = 200 * time.Millisecond })
	hanging, healthy := newSwitchable(t), newSwitchable(t)
	d.ruleTo("h", hanging.URL)
	d.ruleTo("ok", healthy.URL)
	d.putFrom("h", 1)
	d.putFrom("ok", 1)
	d.waitInvocations("h", 1)
	d.waitInvocations("ok", 1)
	hanging.hang()
	out := d.putOneAndNine("h", `{}`, "ok")
	waitFor(t, func() bool { _, n := hanging.state(); return n == 1 })
	waitFor(t, func() bool { got, _ := healthy.state(); return len(got) == 10 })
	if m := scrape(t, d.srv.Addr()); m[`bridgeport_routed_jobs_total{path="direct"}`] < 10 {
		t.Fatalf("routed_jobs_total: %v direct, want the call's 10", m[`bridgeport_routed_jobs_total{path="direct"}`])
	}
	if err := d.srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	hanging.unhang()
	d.restartDelivery()
	held := aws.ToString(out.Entries[0].EventId)
	waitFor(t, func() bool { got, _ := hanging.state(); return idCounts(got)[held] == 2 })
	d.waitRouted()
	got, _ := healthy.state()
	checkOnce(t, got, out.Entries[1:])
}

// putOneAndNine puts one PutEvents call: an event of source first with
// detail, then nine of source rest.
func (d *deliveryEnv) putOneAndNine(first, detail, rest string) *eventbridge.PutEventsOutput {
	d.t.Helper()
	entries := []types.PutEventsRequestEntry{{Source: aws.String(first), DetailType: aws.String("x"), Detail: aws.String(detail)}}
	for range 9 {
		entries = append(entries, types.PutEventsRequestEntry{Source: aws.String(rest), DetailType: aws.String("x"), Detail: aws.String(`{"n":1}`)})
	}
	out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
	if err != nil || out.FailedEntryCount != 0 {
		d.t.Fatalf("PutEvents: %+v %v", out, err)
	}
	return out
}

// checkOnce checks that each of entries' events came once in got.
func checkOnce(t *testing.T, got []received, entries []types.PutEventsResultEntry) {
	t.Helper()
	counts := idCounts(got)
	for _, e := range entries {
		if n := counts[aws.ToString(e.EventId)]; n != 1 {
			t.Errorf("event %s arrived %d times, want once", aws.ToString(e.EventId), n)
		}
	}
}
