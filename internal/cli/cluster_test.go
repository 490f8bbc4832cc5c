package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"bridgeport/internal/natstest"
)

// TestNodeLoss runs two bridgeport processes on an in-process three-node
// NATS cluster, puts events through both, kills one with SIGKILL under
// load, and checks that the survivor finishes the dead node's work: every
// acknowledged event delivered to the first target and dead-lettered for
// the second, none lost.
func TestNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and server processes")
	}
	t.Parallel()
	urls := natstest.Cluster(t, 3)
	l := newLedger()
	sink := l.sink(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	a := startChildWith(t, t.TempDir(), "--nats-url "+urls[0]+" --secret-key "+key)
	b := startChildWith(t, t.TempDir(), "--nats-url "+urls[1]+" --secret-key "+key)
	defer func() {
		for _, c := range []*child{a, b} {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			_ = c.cmd.Wait()
		}
	}()
	setupCrashRule(t, a, sink.URL)
	// B sees the rule before the load starts.
	for seen := time.Now().Add(10 * time.Second); ; {
		out, err := b.client().ListTargetsByRule(context.Background(), &eventbridge.ListTargetsByRuleInput{Rule: aws.String("all")})
		if err == nil && len(out.Targets) == 2 {
			break
		}
		if time.Now().After(seen) {
			t.Fatalf("node B does not see the rule: %v, %v", out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, c := range []*child{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Node A's loader stops when A is gone; B's keeps going.
			l.load(c.client(), fmt.Sprint("w", w), stop, c == a)
		}()
	}
	time.Sleep(time.Duration(400+rand.IntN(400)) * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	time.Sleep(300 * time.Millisecond) // B carries on alone
	close(stop)
	wg.Wait()

	tl, ok := l.drain(t, b.addr, time.Now().Add(120*time.Second))
	if !ok {
		t.Fatalf("after losing node A: %d of %d events never delivered, %d never dead-lettered", tl.lostDelivery, tl.acked, tl.lostDLQ)
	}
	t.Logf("node A killed under load: %d events acknowledged by A and B, all delivered and dead-lettered by B; %d duplicate deliveries", tl.acked, tl.dupDelivery)
}
