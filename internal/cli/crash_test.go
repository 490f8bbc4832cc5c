package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"bridgeport/internal/store"
)

// TestMain lets the test binary act as `bridgeport serve` in a child
// process, so that tests can kill it with SIGKILL.
func TestMain(m *testing.M) {
	if args := os.Getenv("BRIDGEPORT_TEST_CHILD"); args != "" {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Only the variable bench sets: the machine's own BRIDGEPORT_*
		// settings are not the test's.
		getenv := func(k string) string {
			if k == "BRIDGEPORT_SECRET_ACCESS_KEY" {
				return os.Getenv(k)
			}
			return ""
		}
		os.Exit(serve(ctx, strings.Fields(args), os.Stdout, os.Stderr, getenv))
	}
	os.Exit(m.Run())
}

const (
	crashKey    = "AKIACRASHCRASHCRASH0"
	crashSecret = "crash-secret-crash-secret-crash-secret-00"
)

// child is a bridgeport serve process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	return startChildWith(t, dir, "")
}

// startChildWith starts a child with more flags.
func startChildWith(t *testing.T, dir, extra string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BRIDGEPORT_TEST_CHILD=--listen 127.0.0.1:0 --data-dir "+dir+
		" --access-key-id "+crashKey+" --secret-access-key "+crashSecret+" --log-level warn"+
		" --allow-http-endpoints --allow-private-endpoints --retry-base-delay 50ms --retry-max-delay 200ms "+extra)
	addr, err := startServing(cmd)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return &child{cmd: cmd, addr: addr}
}

func (c *child) client() *eventbridge.Client {
	return eventbridge.New(eventbridge.Options{
		BaseEndpoint:     aws.String(c.addr),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(crashKey, crashSecret, ""),
		RetryMaxAttempts: 1,
		// A call the server never answers fails the load's call, not the
		// whole test run.
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	})
}

// crashRounds is how many times the crash test kills the server. The
// default is the short form .ci/run runs; a longer soak:
//
//	go test ./internal/cli -run TestKillNineLosesNothing -crash.rounds 20 -v
var crashRounds = flag.Int("crash.rounds", 3, "SIGKILLs in the crash test")

// ledger accounts for the events of the tests that kill servers: those
// PutEvents acknowledged, delivered to the sink, and dead-lettered.
type ledger struct {
	mu           sync.Mutex
	acked        map[string]bool
	delivered    map[string]int
	deadLettered map[string]int
	// sinkLettered: the events dead-lettered for the sink target, which
	// fails one call in two and so should never exhaust its retries; with
	// the reason of one of them.
	sinkLettered map[string]int
	sinkReason   string
	calls        int
	// refused counts the entries PutEvents did not accept: failed calls
	// and failed entries (the load sends new ones).
	refused int
	// pause, when set, paces each loader: it waits that long after a call.
	pause time.Duration
}

func newLedger() *ledger {
	return &ledger{acked: map[string]bool{}, delivered: map[string]int{}, deadLettered: map[string]int{}, sinkLettered: map[string]int{}}
}

// sink is the endpoint of the crash rule's targets: its root fails every
// other call (retried), /refuse refuses every call (not retried, so each
// event is dead-lettered).
func (l *ledger) sink(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		l.mu.Lock()
		defer l.mu.Unlock()
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		l.calls++
		if l.calls%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		l.delivered[ev.ID]++
	}))
	t.Cleanup(s.Close)
	return s
}

// load puts batches of ten "crash" events through eb until stop closes,
// recording what is acknowledged. At an error it returns when
// quitOnError (the server is gone), else it tries again.
func (l *ledger) load(eb *eventbridge.Client, tag string, stop <-chan struct{}, quitOnError bool) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		var entries []types.PutEventsRequestEntry
		for j := range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("crash"), DetailType: aws.String("t"),
				Detail: aws.String(fmt.Sprintf(`{"tag":%q,"i":%d,"j":%d}`, tag, i, j))})
		}
		out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			if quitOnError {
				return
			}
			l.mu.Lock()
			l.refused += len(entries)
			l.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		for _, e := range out.Entries {
			if e.EventId != nil {
				l.acked[*e.EventId] = true
			} else {
				l.refused++
			}
		}
		l.mu.Unlock()
		time.Sleep(l.pause)
	}
}

// tally is where the accounting stands.
type tally struct {
	acked, lostDelivery, lostDLQ, dupDelivery, dupDLQ int
	// sinkLettered counts the events not delivered because they were
	// dead-lettered for the sink target.
	sinkLettered int
}

func (l *ledger) tally() tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	tl := tally{acked: len(l.acked)}
	for id := range l.acked {
		if l.delivered[id] == 0 {
			tl.lostDelivery++
			if l.sinkLettered[id] > 0 {
				tl.sinkLettered++
			}
		}
		if l.deadLettered[id] == 0 {
			tl.lostDLQ++
		}
	}
	for _, n := range l.delivered {
		tl.dupDelivery += n - 1
	}
	for _, n := range l.deadLettered {
		tl.dupDLQ += n - 1
	}
	return tl
}

// stallLimit is how long a drain waits for the next event to be delivered
// or dead-lettered before it gives up: four times the longest a crashed
// node's jobs wait to be offered again (the delivery consumer's 15 s ack
// wait). A drain that makes progress is never cut short, however large its
// backlog.
const stallLimit = 60 * time.Second

// drain reads and deletes the crash dead-letter queue of the server at
// addr until every acknowledged event has been delivered and dead-lettered
// and the queue is empty, or until nothing more is delivered or
// dead-lettered for stallLimit; it reports progress every 15 seconds and
// returns the final tally and whether everything arrived.
//
// The SQS client keeps the SDK's default retries: under load, Go's
// transport can close a connection while the SDK still reads a large
// answer (a race between the request's write loop and the SDK closing the
// request body, seen only because the server answers within microseconds);
// the retry covers it, and the messages of the lost answer come back after
// their short visibility timeout.
func (l *ledger) drain(t *testing.T, addr string) (tally, bool) {
	ctx := context.Background()
	sq := awssqs.New(awssqs.Options{BaseEndpoint: aws.String(addr), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(crashKey, crashSecret, "")})
	dlq := addr + "/000000000000/crash-dlq"
	start := time.Now()
	nextReport := start.Add(15 * time.Second)
	progress, settled := start, -1
	for {
		out, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			VisibilityTimeout: 3, MessageAttributeNames: []string{"All"}})
		received := 0
		if err != nil {
			t.Logf("receive at %s: %v", time.Since(start), err)
		} else if received = len(out.Messages); received > 0 {
			var del []sqstypes.DeleteMessageBatchRequestEntry
			l.mu.Lock()
			for i, m := range out.Messages {
				var ev struct{ ID string }
				_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &ev)
				attr := func(name string) string { return aws.ToString(m.MessageAttributes[name].StringValue) }
				if strings.Contains(attr("TARGET_ARN"), "api-destination/sink/") {
					l.sinkLettered[ev.ID]++
					l.sinkReason = fmt.Sprintf("%s %s after %s retries: %s", attr("ERROR_CODE"), attr("EXHAUSTED_RETRY_CONDITION"),
						attr("RETRY_ATTEMPTS"), attr("ERROR_MESSAGE"))
				} else {
					l.deadLettered[ev.ID]++
				}
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
			}
			l.mu.Unlock()
			if _, err := sq.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(dlq), Entries: del}); err != nil {
				t.Fatal(err)
			}
		}
		tl := l.tally()
		if err == nil && tl.lostDelivery == tl.sinkLettered && tl.lostDLQ == 0 && received == 0 {
			// Everything arrived, or what did not never will: it was
			// dead-lettered instead.
			return tl, tl.sinkLettered == 0
		}
		if n := 2*tl.acked - tl.lostDelivery - tl.lostDLQ; n > settled {
			progress, settled = time.Now(), n
		}
		if time.Now().After(nextReport) {
			t.Logf("%s into the drain: %d of %d acknowledged events not delivered, %d not dead-lettered yet",
				time.Since(start).Round(time.Second), tl.lostDelivery, tl.acked, tl.lostDLQ)
			nextReport = nextReport.Add(15 * time.Second)
		}
		if time.Since(progress) > stallLimit {
			return tl, false
		}
	}
}

// settle drains the events through the node at addr and returns the
// tally. If the drain stalls, it stops the nodes (stop), reads what the
// pipeline in the store (opened with cfg) still holds, and fails the test
// with a verdict that tells the events not delivered yet (still waiting
// there) from those lost (neither delivered nor anywhere in the store:
// the dead-letter queue itself was read until it was empty).
func (l *ledger) settle(t *testing.T, addr string, stop func(), cfg store.Config) tally {
	t.Helper()
	start := time.Now()
	tl, ok := l.drain(t, addr)
	if ok {
		t.Logf("drained in %s", time.Since(start).Round(time.Millisecond))
		return tl
	}
	if tl.sinkLettered > 0 {
		l.mu.Lock()
		reason := l.sinkReason
		l.mu.Unlock()
		t.Fatalf("%d of %d acknowledged events were dead-lettered for the target that fails one call in two, instead of delivered (%s)",
			tl.sinkLettered, tl.acked, reason)
	}
	stop()
	ctx := context.Background()
	st, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("no progress for %s: %d of %d acknowledged events not delivered, %d not dead-lettered; the store cannot be read to tell lost from waiting: %v",
			stallLimit, tl.lostDelivery, tl.acked, tl.lostDLQ, err)
	}
	defer st.Close()
	if stats, err := st.Stats(ctx); err == nil {
		t.Logf("store after the test:\n%s", stats)
	}
	p, err := st.ReadPending(ctx)
	if err != nil {
		t.Fatalf("no progress for %s: %d of %d acknowledged events not delivered, %d not dead-lettered; reading the store: %v",
			stallLimit, tl.lostDelivery, tl.acked, tl.lostDLQ, err)
	}
	v := l.verdict(p)
	t.Fatalf("no progress for %s after %s of drain, %d events acknowledged: not delivered: %d waiting in the store (%d of them not routed yet), %d lost; not dead-lettered: %d waiting in the store, %d lost (lost: neither delivered nor anywhere in the store)",
		stallLimit, time.Since(start).Round(time.Second), tl.acked, v.waitingDelivery, v.unrouted, v.lostDelivery, v.waitingDLQ, v.lostDLQ)
	return tl
}

// verdict sorts the events not accounted for: waiting (not routed yet, or
// with a job queued or delayed for the target) or lost.
type verdict struct {
	waitingDelivery, lostDelivery, waitingDLQ, lostDLQ, unrouted int
}

func (l *ledger) verdict(p store.Pending) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v verdict
	for id := range l.acked {
		if p.Unrouted[id] && (l.delivered[id] == 0 || l.deadLettered[id] == 0) {
			v.unrouted++
		}
		for _, c := range []struct {
			target          string
			done            int
			waiting, lostTo *int
		}{{"sink", l.delivered[id], &v.waitingDelivery, &v.lostDelivery}, {"refuse", l.deadLettered[id], &v.waitingDLQ, &v.lostDLQ}} {
			switch {
			case c.done > 0:
			case p.Unrouted[id] || slices.Contains(p.Jobs[id], c.target):
				*c.waiting++
			default:
				*c.lostTo++
			}
		}
	}
	return v
}

// stop ends a child with SIGTERM and waits for it.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
}

// TestKillNineLosesNothing puts events while the server is killed with
// SIGKILL at random moments, several times, restarting it each time on the
// same data directory. Each event goes to two targets: one that fails half
// of its calls (so some events wait for a retry at each kill) and one that
// always refuses them (so each is dead-lettered). After the last restart
// everything drains, and every event PutEvents acknowledged is accounted
// for: delivered to the first target and dead-lettered for the second.
// Lost must be zero; duplicates are counted and reported.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	l := newLedger()
	// About 2,000 events/s from the four loaders: more than the server
	// delivers and dead-letters on two cores, so a backlog is in flight at
	// every kill, while the number of events, and so the drain, does not
	// grow with the machine's speed (unpaced, an idle machine put 172,680
	// events in 20 rounds: a 7-minute drain).
	l.pause = 20 * time.Millisecond
	sink := l.sink(t)
	dir := t.TempDir()
	c := startChild(t, dir)
	setupCrashRule(t, c, sink.URL)

	kills := 0
	for round := range *crashRounds {
		eb := c.client()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.load(eb, fmt.Sprintf("r%d-w%d", round, w), stop, true)
			}()
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.cmd.Wait()
		kills++
		close(stop)
		wg.Wait()
		c = startChild(t, dir)
	}
	if l.tally().acked == 0 {
		t.Fatal("no event was acknowledged before the kills")
	}
	defer c.stop()

	// Drain: every acknowledged event must reach the first target and the
	// dead-letter queue of the second.
	tl := l.settle(t, c.addr, c.stop, store.Config{DataDir: dir})
	t.Logf("%d kills; %d events acknowledged; all delivered and all dead-lettered; lost 0; duplicates: %d deliveries, %d dead letters",
		kills, tl.acked, tl.dupDelivery, tl.dupDLQ)
}

// setupCrashRule creates the crash test's rule: every "crash" event to the
// sink (retried) and to its /refuse path (dead-lettered).
func setupCrashRule(t *testing.T, c *child, sinkURL string) {
	t.Helper()
	ctx := context.Background()
	eb := c.client()
	creds := credentials.NewStaticCredentialsProvider(crashKey, crashSecret, "")
	sq := awssqs.New(awssqs.Options{BaseEndpoint: aws.String(c.addr), Region: "us-east-1", Credentials: creds})
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`
	if _, err := sq.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("crash-dlq"), Attributes: map[string]string{"Policy": policy}}); err != nil {
		t.Fatal(err)
	}
	conn, err := eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	if err != nil {
		t.Fatal(err)
	}
	role := invokeRole(t, c.addr, crashKey, crashSecret)
	var targets []types.Target
	for _, d := range []struct{ name, path string }{{"sink", ""}, {"refuse", "/refuse"}} {
		dest, err := eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String(d.name), ConnectionArn: conn.ConnectionArn,
			InvocationEndpoint: aws.String(sinkURL + d.path), HttpMethod: types.ApiDestinationHttpMethodPost, InvocationRateLimitPerSecond: aws.Int32(100000)})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, types.Target{Id: aws.String(d.name), Arn: dest.ApiDestinationArn, RoleArn: role,
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:crash-dlq")}})
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all"), EventPattern: aws.String(`{"source":["crash"]}`)}); err != nil {
		t.Fatal(err)
	}
	if out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all"), Targets: targets}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %+v, %v", out, err)
	}
}
