package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"bridgeport/internal/admin"
	"bridgeport/internal/config"
	"bridgeport/internal/store"
)

// arraysEvent is a detail with fields f0..f(k-1), each an array of n ones:
// against a rule that asks for 1 in each, a walk over combinations of
// array elements would try n^k of them.
func arraysEvent(k, n int) (pattern, detail string) {
	var p, e []string
	for i := range k {
		p = append(p, fmt.Sprintf(`"f%d":[1]`, i))
		e = append(e, fmt.Sprintf(`"f%d":[%s]`, i, strings.Repeat("1,", n-1)+"1"))
	}
	return `{"source":["h"],"detail":{` + strings.Join(p, ",") + `}}`, "{" + strings.Join(e, ",") + "}"
}

// addRule adds a rule with one target: the delivery environment's API
// destination.
func (d *deliveryEnv) addRule(name, pattern string) {
	d.t.Helper()
	if _, err := d.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(pattern)}); err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name), Targets: []types.Target{
		{Id: aws.String("x"), Arn: aws.String(d.destArn()), RoleArn: d.invokeRole()}}}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deliveryEnv) putDetail(source, detail string) types.PutEventsResultEntry {
	d.t.Helper()
	out, err := d.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{Source: aws.String(source), DetailType: aws.String("x"), Detail: aws.String(detail)}}})
	if err != nil {
		d.t.Fatal(err)
	}
	return out.Entries[0]
}

// TestHostileEventRoutes: one event whose fields hold arrays of a hundred
// values each, against a rule on ten of them, is routed and delivered, and
// routing goes on for the events after it.
func TestHostileEventRoutes(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil)
	pattern, detail := arraysEvent(10, 100)
	d.addRule("hostile", pattern)
	if e := d.putDetail("h", detail); e.ErrorCode != nil {
		t.Fatalf("PutEvents: %s %s", aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
	}
	d.put()
	got := d.sink.wait(t, 2)
	if !strings.Contains(got[0].body+got[1].body, `"f9":[1,1`) {
		t.Errorf("the hostile event was not delivered: %v", got)
	}
}

// TestDeepDetail: PutEvents accepts a detail whose event nests as deep as
// the router reads (1,000 levels with the envelope) and routes it; one
// level more is refused in the entry's answer, never accepted and lost.
func TestDeepDetail(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil)
	nested := func(levels int) string { // an object, then levels-1 arrays
		return `{"a":` + strings.Repeat("[", levels-1) + strings.Repeat("]", levels-1) + "}"
	}
	e := d.putDetail("t", nested(999))
	if e.ErrorCode != nil {
		t.Fatalf("999 levels: %s %s", aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
	}
	d.sink.wait(t, 1)
	e = d.putDetail("t", nested(1000))
	if aws.ToString(e.ErrorCode) != "MalformedDetail" || aws.ToString(e.ErrorMessage) != "Detail is malformed: nested deeper than 1000 levels." || e.EventId != nil {
		t.Fatalf("1000 levels: %+v", e)
	}
}

// TestSetAside: a stored event the router cannot route (one that does not
// parse, and one whose matching runs out of time on every try) is set
// aside: counted, traced, reported by diagnose; events after it are
// delivered.
func TestSetAside(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil, func(c *config.Config) { c.MatchTimeout = time.Nanosecond })
	// Matching that needs more than a few thousand steps meets the 1 ns
	// limit; ordinary events need far fewer.
	d.addRule("wide", `{"source":["w"],"detail":{"x":[2]}}`)
	wide := d.putDetail("w", `{"x":[`+strings.Repeat("1,", 20000)+`2]}`)
	if wide.ErrorCode != nil {
		t.Fatalf("PutEvents: %+v", wide)
	}
	if err := d.srv.store.AppendEvents(ctx, []store.Event{{ID: "bad-event", Bus: "default", Ingested: time.Now(), Data: []byte(`{"source":"t",`)}}); err != nil {
		t.Fatal(err)
	}
	d.put()
	d.sink.wait(t, 1)

	waitFor(t, func() bool {
		sum, err := d.srv.store.Aside(ctx, "default")
		return err == nil && sum.Count == 2
	})
	m := scrape(t, d.srv.Addr())
	for _, reason := range []string{"the event does not parse", "matching the event took longer than 1ns"} {
		if got := m[`bridgeport_events_set_aside_total{bus="default",reason="`+reason+`"}`]; got != 1 {
			t.Errorf("set aside for %q: %v, want 1", reason, got)
		}
	}
	for id, tries := range map[string]int{"bad-event": 1, aws.ToString(wide.EventId): 3} {
		var out admin.AttemptsOutput
		waitFor(t, func() bool {
			out = admin.AttemptsOutput{}
			err := d.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".TraceEvent", admin.TraceEventInput{EventId: &id}, &out)
			return err == nil && len(out.Attempts) == 1
		})
		if a := out.Attempts[0]; a.Outcome != store.OutcomeSetAside || a.ErrorCode != "UNROUTABLE" || a.Attempt != tries {
			t.Errorf("trace of %s: %+v", id, a)
		}
	}
	found := false
	for _, f := range d.diagnose(false).Findings {
		if f.Check == "routing" && f.Status == admin.StatusProblem && strings.Contains(f.Message, "2 event(s)") {
			found = true
		}
	}
	if !found {
		t.Errorf("diagnose does not report the events set aside: %+v", d.diagnose(false).Findings)
	}
}
