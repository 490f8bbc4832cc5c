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
