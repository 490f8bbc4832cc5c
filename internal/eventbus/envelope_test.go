package eventbus

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEnvelopeMembers(t *testing.T) {
	s := New(Config{Region: "us-east-1", AccountID: "123456789012"})
	ts := time.Date(2026, 12, 5, 10, 30, 0, 0, time.UTC)
	ev := s.encodeEvent("id-1", `src"q`, "dt", []string{"r1"}, formatEventTime(ts), `{"a":{"time":"x"},"b":[1,"}"]}`)
	if got, err := eventTime(ev); err != nil || !got.Equal(ts) {
		t.Errorf("eventTime = %v, %v", got, err)
	}
	if got := eventID(ev); got != "id-1" {
		t.Errorf("eventID = %q", got)
	}
	out := withReplayName(ev, "my-replay")
	want := `{"version":"0","id":"id-1","detail-type":"dt","source":"src\"q","account":"123456789012","time":"2026-12-05T10:30:00Z","region":"us-east-1","replay-name":"my-replay","resources":["r1"],"detail":{"a":{"time":"x"},"b":[1,"}"]}}`
	if string(out) != want {
		t.Errorf("withReplayName:\n got %s\nwant %s", out, want)
	}
	// Without resources, the member comes last; spaces are kept.
	for in, want := range map[string]string{
		`{"a":1}`:       `{"a":1,"replay-name":"r"}`,
		`{}`:            `{"replay-name":"r"}`,
		` { "a" : 1 } `: ` { "a" : 1 ,"replay-name":"r"} `,
	} {
		if got := string(withReplayName([]byte(in), "r")); got != want {
			t.Errorf("withReplayName(%s) = %s, want %s", in, got, want)
		}
	}
	if _, err := eventTime([]byte(`{"time":5}`)); err == nil {
		t.Error("a time that is not a string was read")
	}
}

// FuzzTopMember checks topMember and withReplayName against encoding/json
// on any input: never a panic; on a valid object, the member found is the
// one encoding/json decodes (the last of repeated keys aside), and the
// object with a replay name stays valid and gains exactly that member.
func FuzzTopMember(f *testing.F) {
	for _, s := range []string{`{"time":"2026-01-01T00:00:00Z","resources":[]}`, `{"a":{"time":1},"time":"x"}`, `{"a":"\"}","time":"y"}`, `[]`, `{"time":`, `{"a":[{"b":"]"}],"resources":["x"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, vs, ve, ok := topMember(data, "time")
		if !ok || !json.Valid(data) {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return
		}
		// Keys spelled with escapes are left out: topMember compares
		// keys as written, which is enough for envelopes.
		if bytes.Count(data, []byte(`"time"`)) == 1 && !bytes.ContainsRune(data, '\\') {
			var a, b any
			if json.Unmarshal(data[vs:ve], &a) != nil || json.Unmarshal(obj["time"], &b) != nil {
				t.Fatalf("value %q does not decode", data[vs:ve])
			}
			if ja, _ := json.Marshal(a); string(ja) != mustJSON(b) {
				t.Fatalf("topMember found %s, encoding/json %s", data[vs:ve], obj["time"])
			}
		}
		out := withReplayName(data, "r")
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("withReplayName(%s) = %s: %v", data, out, err)
		}
		if _, had := obj["replay-name"]; !had && (string(got["replay-name"]) != `"r"` || len(got) != len(obj)+1) {
			t.Fatalf("withReplayName(%s) = %s", data, out)
		}
		if !strings.Contains(string(out), `"replay-name":"r"`) {
			t.Fatalf("no member in %s", out)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
