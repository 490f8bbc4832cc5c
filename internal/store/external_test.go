package store

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestExternalServer runs the same code against a separate NATS server
// reached over TCP, as with --nats-url.
func TestExternalServer(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	if s.ns != nil {
		t.Fatal("started an embedded server despite a URL")
	}
	if _, err := s.Create(ctx, "bus.x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, []Event{{ID: "e", Bus: "x", Ingested: time.Now(), Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Error("not ready while connected")
	}
	s.Close()

	// A second node sees what the first wrote.
	s2, err := Open(ctx, Config{URL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	e, err := s2.Get(ctx, "bus.x")
	if err != nil || string(e.Value) != "x" {
		t.Fatalf("second node: %v %v", e, err)
	}
}
