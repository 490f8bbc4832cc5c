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
	"bridgeport/internal/store"
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
	stopNodes := func() {
		a.stop()
		b.stop()
	}
	defer stopNodes()
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

	tl := l.settle(t, b.addr, stopNodes, store.Config{URL: strings.Join(urls, ",")})
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
	// About 1,000 events/s from the two loaders: room on this machine's
	// two cores for a restarted server to catch up under load.
	l.pause = 20 * time.Millisecond
	sink := l.sink(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	urls := strings.Join(cluster.URLs, ",")
	// Each node lists every NATS server, first the one it prefers.
	a := startChildWith(t, t.TempDir(), "--nats-url "+urls+" --secret-key "+key)
	b := startChildWith(t, t.TempDir(), "--nats-url "+strings.Join(append(cluster.URLs[1:], cluster.URLs[0]), ",")+" --secret-key "+key)
	stopNodes := func() {
		a.stop()
		b.stop()
	}
	defer stopNodes()
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
			if time.Since(stopped) > time.Minute {
				t.Fatalf("round %d: fewer than 200 events acknowledged in a minute after losing a NATS node", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("round %d: stopped NATS node %s, the jobs stream's leader, with %d events acknowledged; 200 more acknowledged %s later",
			round, cluster.Name(leader), before, time.Since(stopped).Round(time.Millisecond))
		if round < *natsRounds-1 {
			// Back, and caught up, before the next is lost: losing a
			// second server while the first is behind is losing two.
			cluster.StartNode(leader)
			waitCurrent(t, cluster)
		}
	}
	close(stop)
	wg.Wait()

	tl := l.settle(t, b.addr, stopNodes, store.Config{URL: urls})
	l.mu.Lock()
	refused := l.refused
	l.mu.Unlock()
	t.Logf("%d NATS node(s) stopped under load: %d events acknowledged, all delivered and dead-lettered; %d duplicate deliveries, %d duplicate dead letters; %d entries refused (InternalFailure) while leaders changed",
		*natsRounds, tl.acked, tl.dupDelivery, tl.dupDLQ, refused)
}

// waitForRule waits until node c sees the crash rule's two targets.
func waitForRule(t *testing.T, c *child) {
	t.Helper()
	for seen := time.Now().Add(time.Minute); ; {
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
	leader := -1
	clusterInfo(t, cluster, func(js jetstream.JetStream) bool {
		info, err := streamInfo(js, "BP_JOBS")
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = cluster.Index(info.Cluster.Leader)
		return leader >= 0
	})
	return leader
}

// waitCurrent waits until every replica of every stream is current.
func waitCurrent(t *testing.T, cluster *natstest.Nodes) {
	t.Helper()
	clusterInfo(t, cluster, func(js jetstream.JetStream) bool {
		for name := range js.StreamNames(context.Background()).Name() {
			info, err := streamInfo(js, name)
			if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
				return false
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					return false
				}
			}
		}
		return true
	})
}

// clusterInfo asks ready, through a connection to the cluster, until it
// answers true (stream information is not always at hand while leaders
// change), for up to 60 s.
func clusterInfo(t *testing.T, cluster *natstest.Nodes, ready func(jetstream.JetStream) bool) {
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
	for deadline := time.Now().Add(time.Minute); !ready(js); {
		if time.Now().After(deadline) {
			t.Fatal("the NATS cluster's streams are not led and current after 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func streamInfo(js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}
