package server

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// scrape reads /metrics into a map from series (as printed, labels in
// name order) to value.
func scrape(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetrics runs a script (one event delivered at once, one that fails
// three times and goes to the dead-letter queue) and checks the exact
// counts /metrics reports.
func TestMetrics(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(n int) int {
		if n == 0 {
			return 200
		}
		return 503
	}, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(600)})
	c, url := d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq"))
	d.put()
	d.sink.wait(t, 1)
	d.put()
	receiveDLQ(t, c, url, 1)
	// The message stays in flight on the dead-letter queue (received
	// above with a long visibility timeout).
	rule := `bus="default",rule="r"`
	want := map[string]float64{
		`bridgeport_put_events_requests_total{result="success"}`:                                       2,
		`bridgeport_put_events_entries_total`:                                                          2,
		`bridgeport_put_events_failed_entries_total`:                                                   0,
		`bridgeport_put_events_latency_seconds_count`:                                                  2,
		`bridgeport_matched_events_total{bus="default"}`:                                               2,
		`bridgeport_triggered_rules_total{` + rule + `}`:                                               2,
		`bridgeport_invocations_created_total{` + rule + `}`:                                           2,
		`bridgeport_invocation_attempts_total{` + rule + `}`:                                           4,
		`bridgeport_successful_invocation_attempts_total{` + rule + `}`:                                1,
		`bridgeport_retry_invocation_attempts_total{` + rule + `}`:                                     2,
		`bridgeport_failed_attempts_total{bus="default",code="ERROR_FROM_TARGET",rule="r",target="x"}`: 3,
		`bridgeport_invocations_total{` + rule + `}`:                                                   2,
		`bridgeport_failed_invocations_total{` + rule + `}`:                                            1,
		`bridgeport_invocations_sent_to_dlq_total{` + rule + `}`:                                       1,
		`bridgeport_ingestion_to_invocation_start_latency_seconds_count{` + rule + `}`:                 2,
		`bridgeport_ingestion_to_invocation_complete_latency_seconds_count{` + rule + `}`:              2,
		`bridgeport_ingestion_to_invocation_success_latency_seconds_count{` + rule + `}`:               1,
		`bridgeport_retry_backlog{bus="default",rule="r",target="x"}`:                                  0,
		`bridgeport_queue_messages{queue="dlq",state="in_flight"}`:                                     1,
		`bridgeport_queue_messages{queue="dlq",state="visible"}`:                                       0,
		`bridgeport_connections{state="AUTHORIZED"}`:                                                   1,
		`bridgeport_pipeline_depth{stage="jobs"}`:                                                      0,
		`bridgeport_nodes`: 1,
		// No replay ran: the replay lane paces nothing.
		`bridgeport_replay_pace_per_second`:           0,
		`bridgeport_client_connections_evicted_total`: 0,
		`bridgeport_request_body_bytes`:               0,
		`bridgeport_requests_refused_busy_total`:      0,
	}
	// Outcomes are recorded right after the dead-letter send, and the job
	// leaves the queue a moment later: wait until the figures settle.
	var got map[string]float64
	deadline := time.Now().Add(time.Minute)
	for {
		got = scrape(t, d.srv.Addr())
		settled := true
		for series, v := range want {
			settled = settled && got[series] == v
		}
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	for series := range got {
		if strings.Contains(series, "_dropped_") || strings.Contains(series, "failed_to_be_sent") {
			t.Errorf("unexpected series %s", series)
		}
	}
}

// TestHealth: /healthz and /readyz answer JSON; /readyz names what is not
// ready.
func TestHealth(t *testing.T) {
	t.Parallel()
	e := setup(t)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + e.srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get("/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get("/readyz"); code != 200 || body != `{"ready":true,"checks":{"configuration":"ok","delivery":"ok","store":"ok"}}` {
		t.Errorf("/readyz: %d %s", code, body)
	}
	e.srv.stopWorker()
	<-e.srv.workerDone
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, `"delivery":"delivery workers not running"`) || !strings.Contains(body, `"ready":false`) {
		t.Errorf("/readyz without workers: %d %s", code, body)
	}
}

// TestRequestIDsInLogs: the lines logged about a request carry the id the
// client got.
func TestRequestIDsInLogs(t *testing.T) {
	t.Parallel()
	logs := &syncWriter{}
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	srv, err := Start(ctx, e.cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.eb = srv, newClient(srv)
	t.Cleanup(e.stop)
	resp := e.signed(t, "events", "AWSEvents.DescribeEventBus", "application/x-amz-json-1.1", `{"Name":"nope"}`)
	resp.Body.Close()
	id := resp.Header.Get("x-amzn-RequestId")
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
			if m["request_id"] != id || m["status"] != float64(400) {
				t.Errorf("access line %s, want request id %s and status 400", line, id)
			}
			found = true
		}
	}
	if !found || id == "" {
		t.Errorf("no access line for request %q in %s", id, logs.String())
	}
}
