package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDistribution(t *testing.T) {
	t.Parallel()
	var s []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	d := distribution(s)
	if d.Count != 100 || d.P50 != 50 || d.P90 != 90 || d.P99 != 99 || d.Max != 100 {
		t.Errorf("distribution = %+v", d)
	}
	if d := distribution(nil); d.Count != 0 {
		t.Errorf("empty = %+v", d)
	}
	if s[0] != 100*time.Millisecond {
		t.Error("distribution sorted its input in place")
	}
}

// TestSentAt checks the sink's scan against encoding/json on bench's
// events, and on bodies without the member.
func TestSentAt(t *testing.T) {
	for _, body := range []string{
		`{"version":"0","id":"x","detail-type":"bench","source":"bench.delivery","detail":{"sent":1733500000123456789,"pad":"` + strings.Repeat("x", 5000) + `"}}`,
		`{"detail":{"sent":7}}`,
		`{"detail":{"other":7}}`,
		``,
		`{"detail":{"sent":}}`,
	} {
		var ev struct {
			Detail struct {
				Sent int64 `json:"sent"`
			} `json:"detail"`
		}
		_ = json.Unmarshal([]byte(body), &ev)
		if got := sentAt(strings.NewReader(body)); got != ev.Detail.Sent {
			t.Errorf("sentAt(%.60q) = %d, want %d", body, got, ev.Detail.Sent)
		}
	}
}

// TestEntries: the PutEvents body bench builds by hand is the request
// encoding/json would make of the same entries, and the sink finds the
// sending time in the event it becomes.
func TestEntries(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 10} {
		r := &Runner{cfg: Config{Batch: batch}, pad: strings.Repeat("x", 964)}
		sent := time.Unix(1700000000, 123456789)
		var in struct {
			Entries []map[string]string
		}
		body := r.entries(`bus "q"`, "bench.src", sent)
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("batch %d: %v in %s", batch, err, body)
		}
		if len(in.Entries) != batch {
			t.Fatalf("batch %d: %d entries", batch, len(in.Entries))
		}
		for _, e := range in.Entries {
			if e["EventBusName"] != `bus "q"` || e["Source"] != "bench.src" || e["DetailType"] != "bench" || len(e) != 4 {
				t.Fatalf("entry %v", e)
			}
			var d struct {
				Sent int64
				Pad  string
			}
			if err := json.Unmarshal([]byte(e["Detail"]), &d); err != nil || d.Sent != sent.UnixNano() || len(d.Pad) != 964 {
				t.Fatalf("detail %q: %+v, %v", e["Detail"], d, err)
			}
			if got := sentAt(strings.NewReader(`{"detail":` + e["Detail"] + `}`)); got != sent.UnixNano() {
				t.Fatalf("sentAt = %d, want %d", got, sent.UnixNano())
			}
		}
	}
}
