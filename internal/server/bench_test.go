package server

import (
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// BenchmarkPutEvents measures durable ingest through the real API: PutEvents
// calls of 10 entries of about 1 KB from parallel SDK clients, each call
// answered after JetStream stored its entries, with one rule matching every
// event (routing runs, targets none). Run it with
// go test -run '^$' -bench PutEvents -benchtime 2000x ./internal/server
func BenchmarkPutEvents(b *testing.B) {
	e := &env{dir: b.TempDir()}
	e.cfg = testConfig(e.dir)
	srv, err := Start(ctx, e.cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Stop(ctx) }()
	eb := newClient(srv)
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all"), EventPattern: aws.String(`{"source":["bench"]}`)}); err != nil {
		b.Fatal(err)
	}
	detail := fmt.Sprintf(`{"orderId":"ord-1","note":%q}`, strings.Repeat("x", 900))
	entries := make([]types.PutEventsRequestEntry, 10)
	for i := range entries {
		entries[i] = types.PutEventsRequestEntry{Source: aws.String("bench"), DetailType: aws.String("Order"), Detail: aws.String(detail)}
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
			if err != nil || out.FailedEntryCount != 0 {
				b.Error(out, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDeliver measures routing and first attempts through the real
// API: PutEvents calls of 10 entries of about 1 KB from parallel SDK
// clients, one rule sending every event to an API destination (basic auth,
// no rate limit to speak of) on a local keep-alive TLS sink that answers
// 200 at once. Each iteration is a call; the run ends when the sink has
// every event. cpu-µs/event is the process's CPU time over the events,
// and with -benchmem B/op what a call and its 10 deliveries allocate: both
// include the SDK client and the sink, which are the same in every run.
// Run it with
// go test -run '^$' -bench Deliver -benchmem -benchtime 3000x ./internal/server
func BenchmarkDeliver(b *testing.B) {
	var got atomic.Int64
	sink := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	sink.Config.ErrorLog = log.New(io.Discard, "", 0)
	sink.StartTLS()
	defer sink.Close()
	roots := x509.NewCertPool()
	roots.AddCert(sink.Certificate())

	e := &env{t: b, dir: b.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.AllowPrivateEndpoints = true
	e.cfg.RootCAs = roots
	e.start()
	e.routeThrough(e.basicConnection(), sink.URL+"/in", 1_000_000)
	detail := fmt.Sprintf(`{"orderId":"ord-1","note":%q}`, strings.Repeat("x", 900))
	entries := make([]types.PutEventsRequestEntry, 10)
	for i := range entries {
		entries[i] = types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("Order"), Detail: aws.String(detail)}
	}
	put := func() error {
		out, err := e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err == nil && out.FailedEntryCount != 0 {
			err = fmt.Errorf("%d entries failed", out.FailedEntryCount)
		}
		return err
	}
	// The destination proves itself first: a new one's first calls are
	// queued and parked until it answers (OPERATIONS.md).
	if err := put(); err != nil {
		b.Fatal(err)
	}
	for got.Load() < 10 {
		time.Sleep(time.Millisecond)
	}
	got.Store(0)
	b.SetParallelism(4)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := put(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	want := int64(b.N) * 10
	deadline := time.Now().Add(time.Minute)
	for got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if n := got.Load(); n < want {
		b.Fatalf("%d of %d events delivered in a minute", n, want)
	}
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(want)/1000, "cpu-µs/event")
}
