package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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

	"bridgeport/internal/store"
)

// TestMain lets the test binary act as `bridgeport serve` in a child
// process, so that tests can kill it with SIGKILL.
func TestMain(m *testing.M) {
	if args := os.Getenv("BRIDGEPORT_TEST_CHILD"); args != "" {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		os.Exit(serve(ctx, strings.Fields(args), os.Stdout, os.Stderr, func(string) string { return "" }))
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
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		return &child{cmd: cmd, addr: a}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child did not start")
	}
	return nil
}

func (c *child) client() *eventbridge.Client {
	return eventbridge.New(eventbridge.Options{
		BaseEndpoint:     aws.String(c.addr),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(crashKey, crashSecret, ""),
		RetryMaxAttempts: 1,
	})
}

// crashRounds is how many times the crash test kills the server. The
// default is the short form .ci/run runs; a longer soak:
//
//	go test ./internal/cli -run TestKillNineLosesNothing -crash.rounds 20 -v
var crashRounds = flag.Int("crash.rounds", 3, "SIGKILLs in the crash test")

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
	var mu sync.Mutex
	delivered := map[string]int{}
	calls := 0
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusBadRequest) // not retried: dead-lettered
			return
		}
		calls++
		if calls%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered[ev.ID]++
	}))
	defer sink.Close()

	dir := t.TempDir()
	ctx := context.Background()
	c := startChild(t, dir)
	setupCrashRule(t, c, sink.URL)

	var amu sync.Mutex
	acked := map[string]bool{}
	kills := 0
	for round := range *crashRounds {
		eb := c.client()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					var entries []types.PutEventsRequestEntry
					for j := range 10 {
						entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("crash"), DetailType: aws.String("t"),
							Detail: aws.String(fmt.Sprintf(`{"r":%d,"w":%d,"i":%d,"j":%d}`, round, w, i, j))})
					}
					out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
					if err != nil {
						return // the server is gone
					}
					amu.Lock()
					for _, e := range out.Entries {
						if e.EventId != nil {
							acked[*e.EventId] = true
						}
					}
					amu.Unlock()
				}
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
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged before the kills")
	}
	defer func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		_ = c.cmd.Wait()
	}()

	// Drain: every acknowledged event must reach the first target and the
	// dead-letter queue of the second.
	// The SDK's default retries: under load, Go's transport can close a
	// connection while the SDK still reads a large answer (a race between
	// the request's write loop and the SDK closing the request body, seen
	// only because the server answers within microseconds); the retry
	// covers it, and the messages of the lost answer come back after their
	// short visibility timeout.
	sq := awssqs.New(awssqs.Options{BaseEndpoint: aws.String(c.addr), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(crashKey, crashSecret, "")})
	dlq := c.addr + "/000000000000/crash-dlq"
	deadLettered := map[string]int{}
	restart := time.Now()
	deadline := time.Now().Add(180 * time.Second)
	nextReport := time.Now().Add(15 * time.Second)
	for {
		out, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			VisibilityTimeout: 3})
		if err != nil {
			t.Logf("receive at %s: %v", time.Since(restart), err)
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for _, m := range out.Messages {
			var ev struct{ ID string }
			_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &ev)
			deadLettered[ev.ID]++
			if _, err := sq.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(dlq), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		lostDelivery, lostDLQ := 0, 0
		for id := range acked {
			if delivered[id] == 0 {
				lostDelivery++
			}
			if deadLettered[id] == 0 {
				lostDLQ++
			}
		}
		dupDelivery, dupDLQ := 0, 0
		for _, n := range delivered {
			dupDelivery += n - 1
		}
		for _, n := range deadLettered {
			dupDLQ += n - 1
		}
		mu.Unlock()
		if lostDelivery == 0 && lostDLQ == 0 && len(out.Messages) == 0 {
			t.Logf("%d kills; %d events acknowledged; all delivered and all dead-lettered %s after the last restart; lost 0; duplicates: %d deliveries, %d dead letters",
				kills, len(acked), time.Since(restart).Round(time.Millisecond), dupDelivery, dupDLQ)
			return
		}
		if time.Now().After(nextReport) {
			t.Logf("%s after the last restart: %d of %d acknowledged events not delivered, %d not dead-lettered yet",
				time.Since(restart).Round(time.Second), lostDelivery, len(acked), lostDLQ)
			nextReport = nextReport.Add(15 * time.Second)
		}
		if time.Now().After(deadline) {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			_ = c.cmd.Wait()
			if st, err := store.Open(ctx, store.Config{DataDir: dir}); err == nil {
				stats, _ := st.Stats(ctx)
				st.Close()
				t.Logf("store after the test:\n%s", stats)
			}
			t.Fatalf("lost: %d of %d acknowledged events never delivered, %d never dead-lettered", lostDelivery, len(acked), lostDLQ)
		}
	}
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
