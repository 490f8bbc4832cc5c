package eventbus

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestAppendEnvelope checks the hand-written envelope: valid JSON with the
// same members and values as json.Marshal gives, in AWS's order, with HTML
// characters left as they are.
func TestAppendEnvelope(t *testing.T) {
	t.Parallel()
	for _, env := range []envelope{
		{Version: "0", ID: "1", DetailType: "t", Source: "s", Account: "000000000000", Time: "2026-01-01T00:00:00Z", Region: "us-east-1", Resources: []string{}, Detail: `{}`},
		{Version: "0", ID: "2", DetailType: "quote \" <html> & é \u2028 \x01 \n\t", Source: "s\\x\xff", Account: "1", Time: "t", Region: "r",
			Resources: []string{"arn:a", "b\"c"}, Detail: `{"a":[1,{"b":null}],"c":"<é>"}`},
	} {
		got := appendEnvelope(nil, env)
		want, _ := json.Marshal(struct {
			envelope
			Detail json.RawMessage `json:"detail"`
		}{env, json.RawMessage(env.Detail)})
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("invalid JSON %s: %v", got, err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("appendEnvelope = %s\nwant the values of %s", got, want)
		}
		if !strings.HasPrefix(string(got), `{"version":"0","id":`) || strings.Contains(string(got), `\u003c`) {
			t.Errorf("order or escaping: %s", got)
		}
	}
}

// BenchmarkEnvelope measures building one event's envelope around a 1 KB
// detail.
func BenchmarkEnvelope(b *testing.B) {
	env := envelope{Version: "0", ID: "6a7e8feb-b491-4cf7-a9f1-bf3703467718", DetailType: "OrderPlaced", Source: "shop",
		Account: "000000000000", Time: "2026-12-01T10:00:00Z", Region: "us-east-1", Resources: []string{"arn:aws:x"},
		Detail: `{"orderId":"o-1","note":"` + strings.Repeat("x", 1000) + `"}`}
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEnvelope(buf[:0], env)
	}
}
