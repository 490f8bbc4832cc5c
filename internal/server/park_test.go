package server

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"bridgeport/internal/admin"
	"bridgeport/internal/config"
)

// parked returns the number of jobs parked, all targets together.
func (d *deliveryEnv) parked() int {
	counts, err := d.srv.store.ParkedCounts(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// TestDeadDestinationParks: a destination that keeps failing has its
// circuit opened; its events are parked instead of retried (the endpoint
// sees a probe now and then, not a retry of every event); once it answers
// again, every parked event is delivered.
func TestDeadDestinationParks(t *testing.T) {
	t.Parallel()
	var healthyFrom atomic.Int64
	healthyFrom.Store(1 << 62)
	// Retries up to 2 s apart: the 185 attempts of the default policy
	// would take minutes, longer than the test.
	d := setupDelivery(t, func(n int) int {
		if int64(n) >= healthyFrom.Load() {
			return 200
		}
		return 503
	}, nil, func(c *config.Config) { c.RetryMaxDelay = 2 * time.Second })
	d.setTarget(func(t *types.Target) { t.InputTransformer = nil }) // the endpoint gets the events, with their ids
	ids := d.putFrom("t", 100)
	waitFor(t, func() bool { return d.parked() >= 90 })

	// While parked, the events cost the endpoint a probe now and then.
	// Retried, 100 events with waits of one second on average would be
	// tried about 200 times in two seconds.
	// And the node holds one of them in hand, not a handful: the one
	// that waits for the destination and makes the probes.
	before := len(d.sink.received())
	for range 10 {
		time.Sleep(200 * time.Millisecond)
		if n := d.srv.store.ParkedInHand(); n > 1 {
			t.Errorf("%d parked jobs in hand while their destination is down, want at most 1", n)
			break
		}
	}
	if n := len(d.sink.received()) - before; n > 50 {
		t.Errorf("%d requests in 2 s to a destination whose events are parked", n)
	}
	m := scrape(t, d.srv.Addr())
	if got := m[`bridgeport_parked_invocations_total{bus="default",rule="r"}`]; got < 90 {
		t.Errorf("parked_invocations_total = %v, want at least 90", got)
	}
	// The backlog is visible: per target, per destination, and in one
	// line of diagnose.
	if got := m[`bridgeport_parked_backlog{bus="default",rule="r",target="x"}`]; got < 90 {
		t.Errorf("parked_backlog = %v, want at least 90", got)
	}
	if got := m[`bridgeport_backlog_oldest_age_seconds{bus="default",rule="r",target="x"}`]; got <= 0 {
		t.Errorf("backlog_oldest_age_seconds = %v", got)
	}
	if got := m[`bridgeport_destination_circuit_open{destination="`+d.destArn()+`"}`]; got != 1 {
		t.Errorf("destination_circuit_open = %v, want 1", got)
	}
	found := false
	for _, f := range d.diagnose(false).Findings {
		if f.Check == "backlog" && f.Status == admin.StatusProblem && strings.Contains(f.Message, "parked") && strings.Contains(f.Message, "ERROR_FROM_TARGET") {
			found = true
		}
	}
	if !found {
		t.Errorf("diagnose does not report the parked backlog: %+v", d.diagnose(false).Findings)
	}

	healthyFrom.Store(int64(len(d.sink.received())))
	defer func() {
		if t.Failed() {
			got := d.sink.received()
			t.Logf("parked %d, requests %d, after the flip %d (%d events), dropped %d", d.parked(), len(got), len(got)-int(healthyFrom.Load()), len(eventIDs(got[healthyFrom.Load():])), d.srv.Dropped())
			for _, l := range splitLines(d.logs.String()) {
				if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") || strings.Contains(l, "park") || strings.Contains(l, "prob") {
					t.Log(l)
				}
			}
		}
	}()
	waitFor(t, func() bool {
		got := d.sink.received()
		return len(eventIDs(got[healthyFrom.Load():])) == len(ids)
	})
	waitFor(t, func() bool { return d.parked() == 0 })
	if m := scrape(t, d.srv.Addr()); m[`bridgeport_destination_circuit_open{destination="`+d.destArn()+`"}`] != 0 {
		t.Error("the circuit is still reported open")
	}
	if d.srv.Dropped() != 0 {
		t.Errorf("%d dropped", d.srv.Dropped())
	}
}

// TestParkedEventsKeepTheirRetryPolicy: parked events run out of retries
// (or of age) as they would have if every attempt had been made, and go to
// their dead-letter step with the condition and the attempts counted.
func TestParkedEventsKeepTheirRetryPolicy(t *testing.T) {
	t.Parallel()
	t.Run("attempts", func(t *testing.T) {
		t.Parallel()
		d := setupDelivery(t, func(int) int { return 503 }, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(20), MaximumEventAgeInSeconds: aws.Int32(3600)})
		d.putFrom("t", 20)
		for _, dl := range d.deadLetters(20) {
			if dl["exhausted"] != "MaximumRetryAttempts" || dl["retry_attempts"] != float64(20) || dl["error_code"] != "ERROR_FROM_TARGET" {
				t.Errorf("dead letter %v", dl)
			}
		}
		// Far fewer requests than 20 events of 21 attempts each.
		if n := len(d.sink.received()); n >= 20*21 {
			t.Errorf("%d requests: the events were not parked", n)
		}
	})
	t.Run("age", func(t *testing.T) {
		t.Parallel()
		var skew atomic.Int64
		d := setupDelivery(t, func(int) int { return 503 }, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(600)},
			func(c *config.Config) {
				c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
				c.RetryBaseDelay, c.RetryMaxDelay = 20*time.Millisecond, 30*time.Second
			})
		d.putFrom("t", 20)
		waitFor(t, func() bool { return d.parked() >= 15 })
		skew.Store(int64(601 * time.Second)) // ten minutes pass
		// Parked ones with the error that parked them; any still in a
		// retry tier with TIMEOUT, "older than MaximumEventAgeInSeconds".
		for _, dl := range d.deadLetters(20) {
			if dl["exhausted"] != "MaximumEventAgeInSeconds" || dl["error_code"] != "ERROR_FROM_TARGET" && dl["error_code"] != "TIMEOUT" {
				t.Errorf("dead letter %v", dl)
			}
		}
	})
}

// TestParkedTrace: the attempt log says when an event was parked, and why.
func TestParkedTrace(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 503 }, nil)
	d.putFrom("t", 10)
	waitFor(t, func() bool { return d.parked() >= 8 })
	var out admin.AttemptsOutput
	rule := "r"
	if err := d.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".ListAttempts", admin.ListAttemptsInput{Rule: &rule}, &out); err != nil {
		t.Fatal(err)
	}
	parked := 0
	for _, a := range out.Attempts {
		if a.Outcome == "PARKED" {
			parked++
		}
	}
	if parked < 8 {
		raw, _ := json.Marshal(out)
		t.Errorf("%d PARKED records: %s", parked, strings.TrimSpace(string(raw)))
	}
}

// TestDrainIsFair: once a dead destination answers again, its parked
// events drain at its rate limit, oldest first, while another destination
// keeps delivering: its events arrive during the drain, not after it.
func TestDrainIsFair(t *testing.T) {
	t.Parallel()
	var dead atomic.Bool
	dead.Store(true)
	healthy := newSink(t)
	d := setupDelivery(t, func(int) int {
		if dead.Load() {
			return 503
		}
		return 200
	}, nil, func(c *config.Config) {
		c.RetryMaxDelay = 2 * time.Second
		c.RootCAs.AddCert(healthy.Certificate())
	})
	d.setTarget(func(t *types.Target) { t.InputTransformer = nil })
	if _, err := d.eb.UpdateApiDestination(ctx, &eventbridge.UpdateApiDestinationInput{Name: aws.String("d"), InvocationRateLimitPerSecond: aws.Int32(20)}); err != nil {
		t.Fatal(err)
	}
	dest, err := d.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("h"), ConnectionArn: aws.String(d.conn),
		InvocationEndpoint: aws.String(healthy.URL), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("h"), EventPattern: aws.String(`{"source":["h"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("h"), Targets: []types.Target{{Id: aws.String("y"), Arn: dest.ApiDestinationArn, RoleArn: d.invokeRole()}}}); err != nil {
		t.Fatal(err)
	}
	// Ten events open the circuit; the 100 put after that are parked as
	// they are routed, in the order they were put. (Put before the circuit
	// opens, how many are tried, retried and parked when their retries
	// come due, after later ones, would depend on the machine's speed.)
	d.putFrom("t", 10)
	waitFor(t, func() bool {
		open, err := d.srv.store.OpenCircuits(ctx)
		return err == nil && len(open) > 0
	})
	time.Sleep(100 * time.Millisecond) // the node's view of the circuit follows the store's
	var order []string
	for range 10 {
		ids := d.putFrom("t", 10)
		for id := range ids {
			order = append(order, id) // within a call the order is the entries'; close enough
		}
	}
	waitFor(t, func() bool { return d.parked() >= 100 })
	before := len(d.sink.received())
	dead.Store(false)
	// The drain takes about 5 s at 20/s; meanwhile the other destination
	// gets its events.
	for range 20 {
		out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("h"), DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	healthyGot := healthy.wait(t, 20)
	var drained []received
	waitFor(t, func() bool {
		drained = d.sink.received()[before:]
		return len(eventIDs(drained)) >= 110
	})
	if last := healthyGot[19].at; !last.Before(drained[len(drained)-1].at) {
		t.Errorf("the healthy destination's 20 events arrived at %v, after the drain ended at %v", last, drained[len(drained)-1].at)
	}
	// Oldest first: the events drained first were, on average, put
	// earlier than those drained last. (A probe while the destination was
	// dead took one and parked it again, last: a few are out of place.)
	rank := map[string]int{}
	for i, id := range order {
		rank[id] = i
	}
	var ranks []int
	for _, r := range drained {
		var ev struct{ ID string }
		if json.Unmarshal([]byte(r.body), &ev) == nil {
			if i, ok := rank[ev.ID]; ok {
				ranks = append(ranks, i)
			}
		}
	}
	mean := func(s []int) float64 {
		sum := 0
		for _, v := range s {
			sum += v
		}
		return float64(sum) / float64(len(s))
	}
	q := len(ranks) / 4
	first, lastq := mean(ranks[:q]), mean(ranks[len(ranks)-q:])
	if first >= lastq {
		t.Errorf("drained first: events put at %.0f on average; drained last: at %.0f", first, lastq)
	}
	t.Logf("drained first: events put at %.0f on average; drained last: at %.0f", first, lastq)
}

// TestParkedJobGetsAnAttempt: a job parked while its destination's circuit
// is open is not dead-lettered on the circuit's word alone: with
// MaximumRetryAttempts 0 its one attempt is made, and an endpoint back
// since the circuit opened gets it.
func TestParkedJobGetsAnAttempt(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	d := setupDelivery(t, func(int) int {
		if healthy.Load() {
			return 200
		}
		return 503
	}, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(0), MaximumEventAgeInSeconds: aws.Int32(3600)},
		func(c *config.Config) { c.RetryBaseDelay, c.RetryMaxDelay = time.Minute, time.Hour }) // no probe within the test
	d.setTarget(func(t *types.Target) { t.InputTransformer = nil })
	first := d.putFrom("t", 5) // five failures in a row open the circuit
	d.deadLetters(5)
	waitFor(t, func() bool {
		m := scrape(t, d.srv.Addr())
		return m[`bridgeport_destination_circuit_open{destination="`+d.destArn()+`"}`] == 1
	})
	healthy.Store(true)
	later := d.putFrom("t", 10)
	waitFor(t, func() bool { return len(eventIDs(d.sink.received())) >= len(first)+len(later) })
	got := eventIDs(d.sink.received())
	for id := range later {
		if !got[id] {
			t.Errorf("event %s parked while the circuit was open was never tried", id)
		}
	}
	if n := len(d.deadLetters(5)); n != 5 {
		t.Errorf("%d dead letters, want the 5 that failed", n)
	}
}

// TestNewDestinationBurst: a burst to a destination nothing has called yet
// fills its first 16 calls in flight, which it has not answered; the jobs
// beyond are parked, and a keeper takes them at once, to send when a call
// is free, rather than at the keepers' next look for parked targets (a
// second later by default; an hour here, so that only the park itself
// can start one). Once the destination answers, every event arrives.
func TestNewDestinationBurst(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	d := setupDelivery(t, func(int) int { return 200 }, nil, func(c *config.Config) { c.KeeperPoll = time.Hour })
	d.sink.mu.Lock()
	d.sink.hold = hold
	d.sink.mu.Unlock()
	d.setTarget(func(t *types.Target) { t.InputTransformer = nil }) // the endpoint gets the events, with their ids
	ids := d.putFrom("t", 40)
	waitFor(t, func() bool { return d.parked() >= 1 })
	waitFor(t, func() bool { return d.srv.store.ParkedInHand() >= 1 })
	close(hold)
	waitFor(t, func() bool { return len(eventIDs(d.sink.received())) == len(ids) })
	waitFor(t, func() bool { return d.parked() == 0 })
}
