package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/natstest"
)

// TestExternalServer runs the same code against a separate NATS server
// reached over TCP, as with --nats-url.
func TestExternalServer(t *testing.T) {
	t.Parallel()
	ns := externalServer(t, 2<<20)
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

// externalServer starts a NATS server with JetStream on a loopback port.
func externalServer(t *testing.T, maxPayload int32) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	return ns
}

// TestSmallMaxPayload: a NATS server whose max_payload is under 2 MiB
// (nats-server's default is 1 MiB) would refuse queue messages and large
// jobs after they were accepted; the node refuses to start, naming the
// setting, and creates nothing there.
func TestSmallMaxPayload(t *testing.T) {
	t.Parallel()
	ns := externalServer(t, 0) // the default, 1 MiB
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{URL: ns.ClientURL()})
	if err == nil {
		s.Close()
		t.Fatal("started on a server with max_payload 1 MiB")
	}
	if !strings.Contains(err.Error(), "max_payload 1048576 bytes") || !strings.Contains(err.Error(), "max_payload: 2MB") {
		t.Errorf("error: %v", err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		t.Errorf("stream %s created", name)
	}
}

// TestReplicated runs the compare-and-set paths on a three-node cluster
// with three replicas, where JetStream reports conflicts with other error
// codes than on a single server: stale updates and deletes of records,
// contended rate windows, and stale receipt handles.
func TestReplicated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	urls := strings.Join(natstest.Cluster(t, 3), ",")
	ctx := context.Background()
	reopen := func() *Store {
		s, err := Open(ctx, Config{URL: urls})
		if err != nil {
			t.Fatal(err)
		}
		if s.cfg.Replicas != 3 {
			t.Fatalf("%d replicas on a cluster, want 3", s.cfg.Replicas)
		}
		return s
	}
	a, b := reopen(), reopen()
	defer a.Close()
	defer b.Close()
	t.Run("records", func(t *testing.T) { checkRecords(t, a) })
	t.Run("claims", func(t *testing.T) { checkClaims(t, a) })
	t.Run("receipts", func(t *testing.T) { checkReceipts(t, reopen) })
	// together runs fn on four goroutines per node, n times on each, and
	// waits for them; fn reports false to stop its goroutine.
	together := func(n int, fn func(s *Store) bool) {
		var wg sync.WaitGroup
		for _, s := range []*Store{a, b} {
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						if !fn(s) {
							return
						}
					}
				}()
			}
		}
		wg.Wait()
	}
	t.Run("contended claims", func(t *testing.T) {
		// Two nodes claim one bucket at once: together they get the
		// burst, no more, and neither fails.
		var mu sync.Mutex
		total := 0
		at := time.Unix(2_000_000, 0) // the same instant for every claim: no refill
		together(20, func(s *Store) bool {
			n, _, err := s.ClaimTokens(ctx, "arn:contended", 1, 100, 3, at)
			if err != nil {
				t.Error(err)
				return false
			}
			mu.Lock()
			total += n
			mu.Unlock()
			return true
		})
		if total != 100 {
			t.Errorf("the nodes claimed %d tokens of a bucket of 100", total)
		}
	})
	t.Run("attempt log", func(t *testing.T) {
		// Each query reads through a new consumer, which the server of the
		// connection may not know yet: every query still answers (1 in
		// 100 found no responder).
		a.LogAttempt(Attempt{Time: time.Now(), EventID: "e1", RuleArn: "arn:rule", TargetID: "t", Attempt: 1, Outcome: OutcomeDelivered})
		waitFor(t, "the attempt logged", func() bool {
			got, err := b.Attempts(ctx, AttemptFilter{EventID: "e1"})
			return err == nil && len(got) == 1
		})
		together(40, func(s *Store) bool {
			got, err := s.Attempts(ctx, AttemptFilter{EventID: "e1"})
			if err != nil || len(got) != 1 {
				t.Errorf("attempts of e1: %+v, %v", got, err)
				return false
			}
			return true
		})
	})
}

func TestServerAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"2.11.0": true, "2.10.29": false, "2.9.10": false, "v2.11.0-RC.1": true, "2.14.5": true, "3.0.0": true,
		"1.99.0": false, "2.1.0": false, "": false, "garbage": false} {
		if got := serverAtLeast(v, 2, 11); got != want {
			t.Errorf("serverAtLeast(%q, 2, 11) = %v, want %v", v, got, want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	got := RedactURLs("nats://u:secretpw@h1:4222, nats://s3cr3ttoken@h2:4222,nats://h3:4222,v:secret2@h4:4222,tok3n@h5")
	for _, secret := range []string{"secretpw", "s3cr3ttoken", "secret2", "tok3n"} {
		if strings.Contains(got, secret) {
			t.Fatalf("secret %q in %q", secret, got)
		}
	}
	if want := "nats://u:xxxxx@h1:4222,nats://xxxxx@h2:4222,nats://h3:4222,nats://v:xxxxx@h4:4222,nats://xxxxx@h5"; got != want {
		t.Errorf("RedactURLs = %q, want %q", got, want)
	}
}

// TestTransient: which JetStream and connection errors a starting node
// waits out, and which it reports at once.
func TestTransient(t *testing.T) {
	api := func(status int, code jetstream.ErrorCode) error {
		return fmt.Errorf("create stream: %w", &jetstream.APIError{Code: status, ErrorCode: code, Description: "x"})
	}
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"no answer":               {context.DeadlineExceeded, true},
		"no leader yet":           {api(503, 10008), true},
		"fewer servers than R":    {api(400, 10005), true},
		"bad request":             {api(400, 10052), false},
		"replicas on one server":  {api(500, 10074), false},
		"not clustered":           {api(500, 10006), false},
		"JetStream not enabled":   {jetstream.ErrJetStreamNotEnabled, false},
		"a cluster can not reply": {api(500, 10009), true},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("%s: transient = %v, want %v", name, got, c.want)
		}
	}
	if !refused(fmt.Errorf("connect: %w", nats.ErrAuthorization)) || refused(nats.ErrNoServers) {
		t.Error("an authorization violation is refused; no servers yet is not")
	}
}
