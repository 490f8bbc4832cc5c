package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/natstest"
)

// clusterNode starts a bridgeport node on the NATS server at url, with the
// key every node shares (each opens the secrets the others sealed) and the
// target sink's certificate trusted.
func clusterNode(t testing.TB, url string, target *sink, opts ...func(*env)) *env {
	e := newClusterNode(t, url, target)
	for _, o := range opts {
		o(e)
	}
	e.start()
	return e
}

// newClusterNode is clusterNode's environment, not started yet.
func newClusterNode(t testing.TB, url string, target *sink) *env {
	e := &env{t: t, dir: t.TempDir()}
	e.cfg = testConfig(e.dir)
	e.cfg.NATSURL = url
	e.cfg.SecretKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	e.cfg.AllowPrivateEndpoints = true
	e.cfg.RootCAs = target.roots()
	return e
}

// route creates, through e, the route the cluster tests use: rule r sends
// every event with source "t" to target x, an API destination at the
// sink's path with a basic-auth connection and the given rate limit.
func (e *env) route(target *sink, path string, rate int32) {
	e.t.Helper()
	e.routeThrough(e.basicConnection(), target.URL+path, rate)
}

// basicConnection creates connection c, with basic auth, and returns its
// ARN.
func (e *env) basicConnection() *string {
	e.t.Helper()
	conn, err := e.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return conn.ConnectionArn
}

// routeThrough creates rule r, which sends every event with source "t" to
// target x, the API destination d at endpoint on the connection, with the
// given rate limit.
func (e *env) routeThrough(connArn *string, endpoint string, rate int32) {
	e.t.Helper()
	dest, err := e.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: connArn,
		InvocationEndpoint: aws.String(endpoint), HttpMethod: types.ApiDestinationHttpMethodPost, InvocationRateLimitPerSecond: aws.Int32(rate)})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["t"]}`)}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("x"),
		Arn: dest.ApiDestinationArn, RoleArn: e.invokeRole()}}}); err != nil {
		e.t.Fatal(err)
	}
}

// TestClusterNodes runs two bridgeport nodes on a three-node NATS cluster
// (streams and buckets with 3 replicas): configuration made through one
// node is seen by the other, events put through the other
// are delivered, each at least once and none lost, with duplicates
// counted.
func TestClusterNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	urls, sink := natstest.Cluster(t, 3), newSink(t)
	nodes := []*env{clusterNode(t, urls[0], sink), clusterNode(t, urls[1], sink)}
	a, b := nodes[0], nodes[1]
	// Every stream and bucket is replicated three times.
	nc, err := nats.Connect(urls[2])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for name := range js.StreamNames(ctx).Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
	}
	a.route(sink, "/hook", 100000)
	// Node B sees the rule and its target.
	waitFor(t, func() bool {
		out, err := b.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r")})
		return err == nil && len(out.Targets) == 1
	})
	// Events through B (and some through A) are delivered, none lost.
	var mu sync.Mutex
	ids := map[string]bool{}
	for i := range 20 {
		n := nodes[i%2]
		var entries []types.PutEventsRequestEntry
		for j := range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(fmt.Sprintf(`{"i":%d,"j":%d}`, i, j))})
		}
		out, err := n.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents through node %d: %+v, %v", i%2, out, err)
		}
		mu.Lock()
		for _, e := range out.Entries {
			ids[aws.ToString(e.EventId)] = true
		}
		mu.Unlock()
	}
	got := sink.wait(t, len(ids))
	time.Sleep(500 * time.Millisecond)
	got = sink.received()
	seen := map[string]int{}
	for _, r := range got {
		var id string
		if i := strings.Index(r.body, `"id":"`); i >= 0 {
			id = r.body[i+6 : i+6+36]
		}
		seen[id]++
	}
	lost, dup := 0, 0
	for id := range ids {
		if seen[id] == 0 {
			lost++
		}
	}
	for _, n := range seen {
		dup += n - 1
	}
	if lost != 0 {
		t.Errorf("%d of %d events lost", lost, len(ids))
	}
	t.Logf("%d events through two nodes on a 3-node cluster: %d deliveries, %d duplicates", len(ids), len(got), dup)

	// A queue is one queue across nodes: sent through A, received through
	// B (then invisible through A), deleted through A with B's handle.
	qa, qb := a.sqsClient(), b.sqsClient()
	url := a.createQueue(qa, "shared", nil)
	if _, err := qa.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("one")}); err != nil {
		t.Fatal(err)
	}
	recv, err := qb.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
	if err != nil || len(recv.Messages) != 1 {
		t.Fatalf("receive through B: %+v, %v", recv, err)
	}
	if again, err := qa.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1}); err != nil || len(again.Messages) != 0 {
		t.Errorf("the message received through B is visible through A: %+v, %v", again, err)
	}
	if _, err := qa.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: recv.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// Approximate counts, as in SQS: the stream drops the message a moment
	// after the delete is answered.
	waitFor(t, func() bool { return a.queueCounts(qa, url) == [2]string{"0", "0"} })

	// A connection deauthorized through B is DEAUTHORIZED on A, and A no
	// longer invokes its destination.
	if _, err := b.eb.DeauthorizeConnection(ctx, &eventbridge.DeauthorizeConnectionInput{Name: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		out, err := a.eb.DescribeConnection(ctx, &eventbridge.DescribeConnectionInput{Name: aws.String("c")})
		return err == nil && out.ConnectionState == types.ConnectionStateDeauthorized
	})
	before := len(sink.received())
	put, err := a.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("t"),
		DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
	if err != nil || put.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %+v, %v", put, err)
	}
	final := (&deliveryEnv{env: a}).finalAttempt(aws.ToString(put.Entries[0].EventId))
	if n := len(sink.received()); n != before || final.ErrorCode != "INVALID_PARAMETER" {
		t.Errorf("an event to a DEAUTHORIZED connection: %d invocations, final attempt %+v", n-before, final)
	}

	// JetStream's consumers and streams (Raft groups) do not grow with the
	// configuration: 20 more connections, destinations, rules and targets.
	consumers, streams := countConsumers(t, js)
	for i := range 20 {
		conn, err := a.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String(fmt.Sprint("c", i)), AuthorizationType: types.ConnectionAuthorizationTypeApiKey,
			AuthParameters: &types.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &types.CreateConnectionApiKeyAuthRequestParameters{ApiKeyName: aws.String("k"), ApiKeyValue: aws.String("v")}}})
		if err != nil {
			t.Fatal(err)
		}
		dest, err := a.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String(fmt.Sprint("d", i)), ConnectionArn: conn.ConnectionArn,
			InvocationEndpoint: aws.String(sink.URL), HttpMethod: types.ApiDestinationHttpMethodPost})
		if err != nil {
			t.Fatal(err)
		}
		rule := aws.String(fmt.Sprint("r", i))
		if _, err := a.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: rule, EventPattern: aws.String(fmt.Sprintf(`{"source":["s%d"]}`, i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: rule, Targets: []types.Target{{Id: aws.String("x"), Arn: dest.ApiDestinationArn, RoleArn: a.invokeRole()}}}); err != nil {
			t.Fatal(err)
		}
	}
	// And deliveries to them make none either (once both nodes route
	// with the new rules).
	for _, n := range nodes {
		waitFor(t, func() bool {
			out, err := n.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r19")})
			return err == nil && len(out.Targets) == 1
		})
	}
	delivered := len(sink.received())
	for k := range 2 {
		var entries []types.PutEventsRequestEntry
		for i := range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String(fmt.Sprint("s", k*10+i)), DetailType: aws.String("x"), Detail: aws.String(`{}`)})
		}
		if out, err := b.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries}); err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
	}
	sink.wait(t, delivered+20)
	if c, s := countConsumers(t, js); c != consumers || s != streams {
		t.Errorf("with 20 more rules, targets and destinations: %d durable consumers and %d streams, were %d and %d", c, s, consumers, streams)
	}
	t.Logf("%d streams and %d durable consumers, however many rules, targets and destinations", streams, consumers)
}

// countConsumers counts the streams and their durable consumers (the
// ephemeral ones are the nodes' watches of the configuration).
func countConsumers(t *testing.T, js jetstream.JetStream) (consumers, streams int) {
	t.Helper()
	for name := range js.StreamNames(ctx).Name() {
		streams++
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for ci := range st.ListConsumers(ctx).Info() {
			if ci.Config.Durable != "" {
				consumers++
			}
		}
	}
	return consumers, streams
}

// TestClusterRateLimit: a destination's InvocationRateLimitPerSecond holds
// for the cluster, not per node: two nodes share it out, and every event
// is delivered in the end.
func TestClusterRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	urls, sink := natstest.Cluster(t, 3), newSink(t)
	nodes := []*env{clusterNode(t, urls[0], sink), clusterNode(t, urls[1], sink)}
	a, b := nodes[0], nodes[1]
	// Both nodes count each other.
	waitFor(t, func() bool { return a.srv.store.LiveNodes() == 2 && b.srv.store.LiveNodes() == 2 })
	const rate = 20
	a.route(sink, "/limited", rate)
	// Far more than the limit, through both nodes: 400 events, 20 seconds'
	// worth (per-node limits would deliver them in 10).
	start := time.Now()
	ids := map[string]bool{}
	for i := range 40 {
		var entries []types.PutEventsRequestEntry
		for range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(`{}`)})
		}
		out, err := nodes[i%2].eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
		for _, e := range out.Entries {
			ids[aws.ToString(e.EventId)] = true
		}
	}
	sink.waitEvents(t, ids, 0)
	got := sink.received()
	checkRate(t, got, start, rate)
	// Each job turned away by the limit comes back at its place in the
	// schedule, not with all the others at the next window.
	throttled := 0.0
	for _, node := range nodes {
		for k, v := range scrape(t, node.srv.Addr()) {
			if strings.HasPrefix(k, "bridgeport_throttled_rules_total{") {
				throttled += v
			}
		}
	}
	t.Logf("%d deliveries of %d events in %.1fs at a limit of %d/s shared by 2 nodes; %.0f deferrals by the limit",
		len(got), len(ids), got[len(got)-1].at.Sub(start).Seconds(), rate, throttled)
}

// checkRate fails the test when the requests got, which arrived in order,
// are more than a token bucket of rate a second, with a burst of a
// second's worth, allows. Each took its token after start (before the
// first event was put) and before its own arrival, so the first k
// requests, up to the k-th's arrival at a, fit in burst + rate*(a-start)
// tokens. A slow machine only spreads them out: the check holds on any
// machine, and per-node limits (twice the rate) break it.
func checkRate(t *testing.T, got []received, start time.Time, rate int) {
	t.Helper()
	for k, r := range got {
		elapsed := r.at.Sub(start).Seconds()
		if allowed := float64(rate) + float64(rate)*elapsed; float64(k+1) > allowed+1e-9 {
			t.Errorf("%d requests by %.2fs after the first event was put: a limit of %d/s with a burst of %d allows %.0f",
				k+1, elapsed, rate, rate, allowed)
			return
		}
	}
}

// TestClusterStartTogether starts a NATS cluster and three bridgeport
// nodes at the same moment, as a fleet brought up together would: the
// nodes wait for JetStream to elect its leaders, all create the same
// streams and buckets at once, and all start. Then the cluster works.
func TestClusterStartTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	cluster, sink := natstest.Start(t, 3), newSink(t)
	nodes := make([]*env, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		e := newClusterNode(t, strings.Join(cluster.URLs, ","), sink)
		nodes[i] = e
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			e.srv, errs[i] = Start(sctx, e.cfg, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			nodes[i].started(nodes[i].srv) // stopped when the test ends
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	waitFor(t, func() bool { return nodes[0].srv.store.LiveNodes() == 3 })
	// One set of streams, each with three replicas, and each node
	// delivers what is put through it.
	a := nodes[0]
	nc, err := nats.Connect(cluster.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	streams := 0
	for name := range js.StreamNames(ctx).Name() {
		streams++
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
	}
	if streams == 0 {
		t.Fatal("no streams")
	}
	a.route(sink, "/together", 100000)
	// Every node routes with the rule once it has seen it (any node may
	// route an event put through another).
	for _, n := range nodes {
		waitFor(t, func() bool {
			out, err := n.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r")})
			return err == nil && len(out.Targets) == 1
		})
	}
	for _, n := range nodes {
		if out, err := n.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("t"),
			DetailType: aws.String("x"), Detail: aws.String(`{}`)}}}); err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
	}
	sink.wait(t, 3)
}

// TestClusterRestart stops the whole cluster, bridgeport nodes and NATS
// nodes, while every event waits for a retry, and starts it again with a
// new bridgeport node on a new data directory: every pending retry
// resumes, from what the NATS cluster kept alone.
func TestClusterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	cluster, sink := natstest.Start(t, 3), newSink(t)
	cluster.WaitLeader()
	var healthyFrom atomic.Int64 // the first request the endpoint accepts
	healthyFrom.Store(math.MaxInt64)
	sink.status = func(n int) int {
		if int64(n) >= healthyFrom.Load() {
			return 200
		}
		return 503
	}
	url := strings.Join(cluster.URLs, ",")
	retrying := func(e *env) { e.cfg.RetryBaseDelay, e.cfg.RetryMaxDelay = time.Second, 2*time.Second }
	a, b := clusterNode(t, url, sink, retrying), clusterNode(t, url, sink, retrying)
	a.route(sink, "/restart", 100000)
	waitFor(t, func() bool {
		out, err := b.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r")})
		return err == nil && len(out.Targets) == 1
	})
	ids := map[string]bool{}
	for _, n := range []*env{a, b} {
		var entries []types.PutEventsRequestEntry
		for i := range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(fmt.Sprintf(`{"i":%d}`, i))})
		}
		out, err := n.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
		for _, e := range out.Entries {
			ids[aws.ToString(e.EventId)] = true
		}
	}
	// Every event waits for a retry: all are routed, and their jobs are
	// in the retry tiers, or parked (the destination's circuit opens after
	// five failures; the events after that wait without an attempt), or
	// being tried. (A job moving between streams is briefly in two, never
	// in none.)
	waitFor(t, func() bool {
		p, err := a.srv.store.ReadPending(ctx)
		if err != nil || len(p.Unrouted) != 0 {
			return false
		}
		for id := range ids {
			if len(p.Jobs[id]) == 0 {
				return false
			}
		}
		return true
	})
	a.stop()
	b.stop()
	for i := range cluster.URLs {
		cluster.Stop(i)
	}
	for i := range cluster.URLs {
		cluster.StartNode(i)
	}
	cluster.WaitLeader()
	healthyFrom.Store(int64(len(sink.received())))
	clusterNode(t, url, sink, retrying)
	sink.waitEvents(t, ids, int(healthyFrom.Load()))
	t.Logf("%d events waiting for retries through a whole-cluster restart: all delivered after it", len(ids))
}

// eventIDs is the set of event ids in requests' bodies.
func eventIDs(got []received) map[string]bool {
	ids := map[string]bool{}
	for _, r := range got {
		var ev struct{ ID string }
		if json.Unmarshal([]byte(r.body), &ev) == nil && ev.ID != "" {
			ids[ev.ID] = true
		}
	}
	return ids
}
