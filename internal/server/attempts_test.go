package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
)

func (e *env) admin() *awsapi.Client {
	return &awsapi.Client{Endpoint: "http://" + e.srv.Addr(), Region: e.cfg.Region, AccessKeyID: testKey, SecretAccessKey: testSecret}
}

// TestAttemptLog: an event that fails twice and then is delivered leaves
// three records, with their outcomes; the rule's failed attempts are
// listable; nothing secret is recorded.
func TestAttemptLog(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(n int) int { return []int{503, 429, 200}[min(n, 2)] }, nil)
	id := d.putID()
	d.sink.wait(t, 3)
	var out admin.AttemptsOutput
	deadline := time.Now().Add(time.Minute)
	for {
		out = admin.AttemptsOutput{}
		if err := d.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".TraceEvent", admin.TraceEventInput{EventId: &id}, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Attempts) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(out.Attempts) != 3 {
		t.Fatalf("trace: %+v", out)
	}
	want := []struct {
		code, outcome string
		status        int
	}{{"ERROR_FROM_TARGET", "RETRYING", 503}, {"THROTTLING", "RETRYING", 429}, {"", "DELIVERED", 200}}
	for i, a := range out.Attempts {
		w := want[i]
		if a.Attempt != i+1 || a.ErrorCode != w.code || a.Outcome != w.outcome || a.StatusCode != w.status || a.EventId != id ||
			a.TargetId != "x" || a.RuleArn != ruleArn || (w.outcome == "RETRYING") != (a.RetryAt != nil) {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	var failed admin.AttemptsOutput
	rule := "r"
	if err := d.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".ListAttempts",
		admin.ListAttemptsInput{Rule: &rule, FailedOnly: true}, &failed); err != nil {
		t.Fatal(err)
	}
	if len(failed.Attempts) != 2 {
		t.Errorf("failed attempts of rule r: %+v", failed)
	}
	raw, _ := json.Marshal(out)
	if strings.Contains(string(raw), "dTpw") { // base64 of the connection's u:p
		t.Errorf("the attempt log holds the connection's credentials: %s", raw)
	}
	missing := "no-such-event"
	var none admin.AttemptsOutput
	if err := d.admin().Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".TraceEvent", admin.TraceEventInput{EventId: &missing}, &none); err != nil || len(none.Attempts) != 0 {
		t.Errorf("trace of an unknown event: %+v, %v", none, err)
	}
}
