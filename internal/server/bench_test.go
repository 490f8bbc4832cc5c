package server

import (
	"fmt"
	"strings"
	"testing"

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
