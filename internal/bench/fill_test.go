package bench

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/config"
	"bridgeport/internal/server"
)

// TestFillTriesAgain: the fill of a backlog or an archive puts every
// event, trying again the entries a server refuses for a while, and says
// how many it put when it gives up, instead of leaving a caller stopped
// and the scenario short of events.
func TestFillTriesAgain(t *testing.T) {
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDFILLTEST", "fill-test-secret-fill-test-secret-000000"
	srv, err := server.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	client := &awsapi.Client{Endpoint: "http://" + srv.Addr(), Region: cfg.Region, AccessKeyID: cfg.AccessKeyID,
		SecretAccessKey: cfg.SecretAccessKey, HTTP: &http.Client{Timeout: 30 * time.Second}}
	r, err := New(Config{Client: client, Region: cfg.Region, AccountID: cfg.AccountID, Batch: 10, Targets: 1, Concurrency: 2, EventSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ctx := context.Background()
	src := func(int) string { return "bench.fill" }

	// The bus comes into being while the fill is refused
	// (ResourceNotFoundException for every entry): the fill waits for it
	// and puts all 40 events.
	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		created <- r.call(ctx, "CreateEventBus", map[string]any{"Name": "later"}, nil)
	}()
	start := time.Now()
	if err := r.fill(ctx, "fill: %d of %d", "later", 40, src); err != nil {
		t.Fatalf("fill onto a bus created meanwhile: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("the fill ended after %s, before the bus existed", took)
	}
	// Accepted: the 40, once each; refused: at least the first tries.
	m := r.metrics(ctx)
	entries, failed := m["bridgeport_put_events_entries_total"], m["bridgeport_put_events_failed_entries_total"]
	if entries-failed != 40 || failed < 10 {
		t.Fatalf("server counted %v entries, %v of them refused: want 40 accepted after some refused", entries, failed)
	}

	// A bus that never comes: the fill gives up when its context ends,
	// and says what it put and why it stopped.
	dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err = r.fill(dctx, "fill: %d of %d", "never", 40, src)
	if err == nil || !strings.Contains(err.Error(), "0 of 40 events put") || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("fill onto a bus that does not exist: %v", err)
	}
}
