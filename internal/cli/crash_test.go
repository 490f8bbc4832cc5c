package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BRIDGEPORT_TEST_CHILD=--listen 127.0.0.1:0 --data-dir "+dir+
		" --access-key-id "+crashKey+" --secret-access-key "+crashSecret+" --log-level warn"+
		" --allow-http-endpoints --allow-private-endpoints --retry-base-delay 50ms --retry-max-delay 200ms")
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

// TestKillNineLosesNothing puts events while the server is killed with
// SIGKILL at a random moment; the target fails half of its calls, so some
// events are waiting for a retry at the kill. After a restart on the same
// data directory, every event PutEvents acknowledged must reach the target.
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
	eb := c.client()
	conn, err := eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeBasic,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{BasicAuthParameters: &types.CreateConnectionBasicAuthRequestParameters{Username: aws.String("u"), Password: aws.String("p")}}})
	if err != nil {
		t.Fatal(err)
	}
	dest, err := eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("sink"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(sink.URL), HttpMethod: types.ApiDestinationHttpMethodPost, InvocationRateLimitPerSecond: aws.Int32(100000)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all"), EventPattern: aws.String(`{"source":["crash"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all"), Targets: []types.Target{{Id: aws.String("t"), Arn: dest.ApiDestinationArn, RoleArn: invokeRole(t, c.addr, crashKey, crashSecret)}}}); err != nil {
		t.Fatal(err)
	}

	var amu sync.Mutex
	acked := map[string]bool{}
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
						Detail: aws.String(fmt.Sprintf(`{"w":%d,"i":%d,"j":%d}`, w, i, j))})
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
	time.Sleep(time.Duration(300+time.Now().UnixNano()%700) * time.Millisecond)
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged before the kill")
	}
	mu.Lock()
	before := len(delivered)
	mu.Unlock()

	// Restart and wait until everything acknowledged has arrived.
	restart := time.Now()
	c = startChild(t, dir)
	t.Logf("restarted in %s", time.Since(restart))
	defer func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		_ = c.cmd.Wait()
	}()
	deadline := time.Now().Add(120 * time.Second)
	nextReport := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		lost := 0
		for id := range acked {
			if delivered[id] == 0 {
				lost++
			}
		}
		dup := 0
		for _, n := range delivered {
			dup += n - 1
		}
		n := len(delivered)
		mu.Unlock()
		if lost == 0 {
			t.Logf("%d events acknowledged before SIGKILL (%d delivered by then); all delivered %s after restart; %d duplicate deliveries",
				len(acked), before, time.Since(restart).Round(time.Millisecond), dup)
			return
		}
		if time.Now().After(nextReport) {
			t.Logf("%s after restart: %d of %d acknowledged events not delivered yet", time.Since(restart).Round(time.Second), lost, len(acked))
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
			t.Fatalf("%d of %d acknowledged events never arrived (%d distinct delivered)", lost, len(acked), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
