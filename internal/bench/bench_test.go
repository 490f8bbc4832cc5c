package bench

import (
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
