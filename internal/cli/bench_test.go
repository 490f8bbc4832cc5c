package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"bridgeport/internal/bench"
)

// TestBench runs every scenario of `bridgeport bench` briefly against a
// server it starts (this test binary acting as `bridgeport serve`), and
// checks that each measured something and accounted for every event. It
// checks no speed: a busy machine only makes the figures smaller.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	serverCommand = func(args []string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BRIDGEPORT_TEST_CHILD="+strings.Join(args, " "))
		return cmd, nil
	}
	var out, errOut syncBuffer
	code := benchCmd(context.Background(), []string{"--duration", "1s", "--warmup", "500ms", "--rate", "200", "--backlog", "300", "--concurrency", "2",
		"--rules", "400", "--connections", "20", "--events", "2000", "--archive", "300", "--output", "json", "ingest", "latency", "delivery", "backlog", "replay", "rules", "restart"}, &out, &errOut, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, errOut.String())
	}
	var report struct {
		Durability string
		Results    []bench.Result
	}
	if err := json.Unmarshal([]byte(out.String()), &report); err != nil {
		t.Fatalf("bench output: %v\n%s", err, out.String())
	}
	if len(report.Results) != 7 || !strings.Contains(report.Durability, "embedded") {
		t.Fatalf("report: %+v", report)
	}
	for _, r := range report.Results {
		ok := false
		switch r.Scenario {
		case "ingest":
			ok = r.Entries > 0 && r.EntriesPerSec > 0
		case "latency":
			ok = r.Latency != nil && r.Latency.Count > 0 && r.Missing == 0 && r.Latency.P99 >= r.Latency.P50 &&
				r.SendLag != nil && r.SendLag.Count > 0 && r.SendLag.P99 >= r.SendLag.P50 &&
				r.WarmupLatency != nil && r.WarmupLatency.Count > 0 && r.WarmupLatency.Count < r.Latency.Count
		case "delivery":
			// Whether the server kept up (nothing left to drain) or not.
			drain := r.DrainedDeliveries == 0 && r.DrainedPerSec == 0 ||
				r.DrainedDeliveries > 0 && r.DrainedDeliveries <= r.Deliveries && r.DrainSeconds > 0 && r.DrainedPerSec > 0
			ok = r.Entries > 0 && r.Deliveries >= r.Entries*5 && r.Missing == 0 && r.Seconds > 0 && r.DeliveriesPerSec > 0 && drain &&
				r.RawEntriesPerSec > 0 && r.RawRatio > 0 && r.HTTPCeilingPerSec > 0 && len(r.Checks) == 1
		case "backlog":
			ok = r.BacklogEvents >= 285 && r.ServerRSSBytes > 0 && r.Latency != nil && r.BaselineLatency != nil && r.Missing == 0
		case "replay":
			// The server's peak memory is the replay's own: reset when it
			// started (Linux), so at least what it held then.
			ok = r.ArchivedEvents == 300 && r.ReplayedPerSec > 0 && r.ReplayDeliveries >= 300 && r.Missing == 0 &&
				r.Latency != nil && r.Latency.Count > 0 && r.BaselineLatency != nil && r.BaselineLatency.Count > 0 &&
				r.ReplayStartRSSBytes > 0 && r.ReplayPeakRSSBytes >= r.ReplayStartRSSBytes && len(r.Checks) == 3
		case "rules":
			ok = r.Rules == 400 && r.LoadCalls != nil && r.LoadCalls.Count == 400 && len(r.Changes) == 5 &&
				r.Latency != nil && r.Latency.Count > 0 && r.BaselineLatency != nil && r.BaselineLatency.Count > 0
			for _, d := range r.Changes {
				ok = ok && d.Count > 0
			}
		case "restart":
			ok = r.Rules == 400 && r.Connections == 20 && r.Events == 2000 && r.RestartSeconds > 0 && len(r.Checks) == 1
		}
		if !ok {
			t.Errorf("%s measured nothing useful: %+v", r.Scenario, r)
		}
	}
}
