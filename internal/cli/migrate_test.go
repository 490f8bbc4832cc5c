package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bridgeport/internal/natstest"
	"bridgeport/internal/store"
)

// TestMigrate moves a node from its embedded store to a NATS cluster, as
// OPERATIONS.md tells: the node runs under load with events waiting for
// retries, stops, `bridgeport migrate` copies its store into a new
// three-node cluster, and a node started on the cluster (with the old
// secret key) delivers and dead-letters every event the old one
// acknowledged; a node with another key is refused.
func TestMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and server processes")
	}
	t.Parallel()
	l := newLedger()
	sink := l.sink(t)
	dir := t.TempDir()
	old := startChild(t, dir)
	setupCrashRule(t, old, sink.URL)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.load(old.client(), "old", stop, true)
	}()
	time.Sleep(time.Second)
	close(stop)
	<-done
	old.stop()
	acked := l.tally().acked
	if acked == 0 {
		t.Fatal("no event acknowledged before the migration")
	}

	urls := strings.Join(natstest.Cluster(t, 3), ",")
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"migrate", "--data-dir", dir, "--nats-url", urls}, &stdout, &stderr); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr.String())
	}
	t.Logf("%s", strings.TrimSpace(stdout.String()))
	// A second migration into the same cluster is refused.
	if code := Main(context.Background(), []string{"migrate", "--data-dir", dir, "--nats-url", urls}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "already holds bridgeport configuration") {
		t.Errorf("second migrate: exit %d: %s", code, stderr.String())
	}

	key, err := os.ReadFile(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	// The cluster's settings came along: a node with another key is
	// refused. (The bound only turns a node that started into a failure.)
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	env := map[string]string{"BRIDGEPORT_SECRET_KEY": base64.StdEncoding.EncodeToString([]byte("not the key the old node had...."))}
	if code := serve(rctx, []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--nats-url", urls, "--allow-http-endpoints", "--allow-private-endpoints"},
		&out, &errOut, func(k string) string { return env[k] }); code != 1 || !strings.Contains(errOut.String(), "--secret-key (BRIDGEPORT_SECRET_KEY): not the key") {
		t.Fatalf("a node with another key after the migration: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	node := startChildWith(t, t.TempDir(), "--nats-url "+urls+" --secret-key "+strings.TrimSpace(string(key)))
	defer node.stop()
	tl := l.settle(t, node.addr, node.stop, store.Config{URL: urls})
	t.Logf("%d events acknowledged by the embedded node, all delivered and dead-lettered by the cluster node; %d duplicate deliveries", tl.acked, tl.dupDelivery)
}
