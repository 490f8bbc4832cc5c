package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRuleOf(t *testing.T) {
	t.Parallel()
	for arn, want := range map[string]Rule{
		"arn:aws:events:us-east-1:000000000000:rule/r":        {Bus: "default", Name: "r"},
		"arn:aws:events:us-east-1:000000000000:rule/orders/r": {Bus: "orders", Name: "r"},
		"not-an-arn": {Bus: "default", Name: "not-an-arn"},
	} {
		if got := RuleOf(arn); got != want {
			t.Errorf("RuleOf(%s) = %+v, want %+v", arn, got, want)
		}
	}
}

// TestNilSafe: parts built without metrics call the same methods.
func TestNilSafe(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.Attempt(Rule{}, "x", time.Now(), time.Now(), time.Now(), false, true, false, "TIMEOUT")
	m.Delivered(Rule{})
	m.Failed(Rule{}, Dropped)
	m.Throttled(Rule{})
	m.PutEvents(1, 0, 10, false, time.Millisecond)
	m.Matched("default", []Rule{{Bus: "default", Name: "r"}}, []int{1})
}

func TestCounts(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	r := Rule{Bus: "b", Name: "r"}
	now := time.Now()
	m.Attempt(r, "t", now, now, now, false, true, false, "TIMEOUT")
	m.Attempt(r, "t", now, now, now, true, false, true, "")
	m.Failed(r, SentToDLQ)
	if got := testutil.ToFloat64(m.InvocationAttempts.WithLabelValues("b", "r")); got != 2 {
		t.Errorf("attempts %v", got)
	}
	if got := testutil.ToFloat64(m.RetryInvocationAttempts.WithLabelValues("b", "r")); got != 1 {
		t.Errorf("retries %v", got)
	}
	if got := testutil.ToFloat64(m.FailedAttempts.WithLabelValues("b", "r", "t", "TIMEOUT")); got != 1 {
		t.Errorf("failed attempts %v", got)
	}
	if got := testutil.ToFloat64(m.InvocationsSentToDLQ.WithLabelValues("b", "r")); got != 1 {
		t.Errorf("sent to DLQ %v", got)
	}
}
