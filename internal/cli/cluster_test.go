package cli

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	waitForRule(t, b) // before the load starts

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

// natsRounds is how many NATS nodes TestNATSNodeLoss stops, one after
// another, each brought back before the next is stopped. The default is
// the short form .ci/run runs; a longer soak:
//
//	go test ./internal/cli -run TestNATSNodeLoss -cluster.rounds 10 -v
var natsRounds = flag.Int("cluster.rounds", 1, "NATS nodes stopped under load in TestNATSNodeLoss")

// TestNATSNodeLoss runs two bridgeport processes on an in-process
// three-node NATS cluster (every stream and bucket with three replicas),
// puts events through both, and stops the NATS node that leads the jobs
// stream under load: the cluster elects new leaders, the bridgeport node
// connected to the stopped server reconnects to another, and every event
// either acknowledged is delivered to the first target and dead-lettered
// for the second.
func TestNATSNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and server processes")
	}
	t.Parallel()
	cluster := natstest.Start(t, 3)
	cluster.WaitLeader()
	l := newLedger()
	sink := l.sink(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	urls := strings.Join(cluster.URLs, ",")
	// Each node lists every NATS server, first the one it prefers.
	a := startChildWith(t, t.TempDir(), "--nats-url "+urls+" --secret-key "+key)
	b := startChildWith(t, t.TempDir(), "--nats-url "+strings.Join(append(cluster.URLs[1:], cluster.URLs[0]), ",")+" --secret-key "+key)
	defer func() {
		for _, c := range []*child{a, b} {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			_ = c.cmd.Wait()
		}
	}()
	setupCrashRule(t, a, sink.URL)
	waitForRule(t, b)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, c := range []*child{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.load(c.client(), fmt.Sprint("w", w), stop, false)
		}()
	}
	for round := range *natsRounds {
		time.Sleep(time.Duration(400+rand.IntN(400)) * time.Millisecond)
		leader := jobsLeader(t, cluster)
		before := l.tally().acked
		cluster.Stop(leader)
		stopped := time.Now()
		// The load goes on against the two that are left until more
		// events are acknowledged.
		for l.tally().acked < before+200 {
			if time.Since(stopped) > 30*time.Second {
				t.Fatalf("round %d: no events acknowledged in 30 s after losing a NATS node", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("round %d: stopped NATS node %s, the jobs stream's leader, with %d events acknowledged; 200 more acknowledged %s later",
			round, cluster.Name(leader), before, time.Since(stopped).Round(time.Millisecond))
		if round < *natsRounds-1 {
			cluster.StartNode(leader)
		}
	}
	close(stop)
	wg.Wait()

	tl, ok := l.drain(t, b.addr, time.Now().Add(120*time.Second))
	if !ok {
		t.Fatalf("after losing a NATS node: %d of %d events never delivered, %d never dead-lettered", tl.lostDelivery, tl.acked, tl.lostDLQ)
	}
	l.mu.Lock()
	refused := l.refused
	l.mu.Unlock()
	t.Logf("%d NATS node(s) stopped under load: %d events acknowledged, all delivered and dead-lettered; %d duplicate deliveries, %d duplicate dead letters; %d PutEvents calls failed during elections",
		*natsRounds, tl.acked, tl.dupDelivery, tl.dupDLQ, refused)
}

// waitForRule waits until node c sees the crash rule's two targets.
func waitForRule(t *testing.T, c *child) {
	t.Helper()
	for seen := time.Now().Add(10 * time.Second); ; {
		out, err := c.client().ListTargetsByRule(context.Background(), &eventbridge.ListTargetsByRuleInput{Rule: aws.String("all")})
		if err == nil && len(out.Targets) == 2 {
			return
		}
		if time.Now().After(seen) {
			t.Fatalf("node %s does not see the rule: %v, %v", c.addr, out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobsLeader is the index of the NATS node that leads the jobs stream.
func jobsLeader(t *testing.T, cluster *natstest.Nodes) int {
	t.Helper()
	nc, err := nats.Connect(strings.Join(cluster.URLs, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "BP_JOBS")
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Cluster == nil || cluster.Index(info.Cluster.Leader) < 0 {
		t.Fatalf("the jobs stream has no known leader: %+v", info.Cluster)
	}
	return cluster.Index(info.Cluster.Leader)
}
