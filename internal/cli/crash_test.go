package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
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
		" --access-key-id "+crashKey+" --secret-access-key "+crashSecret+" --log-level error")
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
// SIGKILL at a random moment, restarts it on the same data directory, and
// checks that every event PutEvents acknowledged is stored and routed to a
// delivery job.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	c := startChild(t, dir)
	eb := c.client()
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all"), EventPattern: aws.String(`{"source":["crash"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all"), Targets: []types.Target{{Id: aws.String("t"), Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}}}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
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
				mu.Lock()
				for _, e := range out.Entries {
					if e.EventId != nil {
						acked[*e.EventId] = true
					}
				}
				mu.Unlock()
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

	// Restart and let the router catch up, then stop cleanly.
	c = startChild(t, dir)
	deadline := time.Now().Add(60 * time.Second)
	var jobs []store.Job
	for {
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		_ = c.cmd.Wait()
		st, err := store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err = st.QueuedJobs(ctx, len(acked)*2+100)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) >= len(acked) || time.Now().After(deadline) {
			break
		}
		c = startChild(t, dir)
		time.Sleep(time.Second)
	}
	seen := map[string]int{}
	for _, j := range jobs {
		seen[j.EventID]++
	}
	lost, dup := 0, 0
	for id := range acked {
		if seen[id] == 0 {
			lost++
		}
	}
	for _, n := range seen {
		if n > 1 {
			dup += n - 1
		}
	}
	t.Logf("%d events acknowledged before SIGKILL, %d jobs after restart, %d duplicates", len(acked), len(jobs), dup)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events have no delivery job after kill -9", lost, len(acked))
	}
	if dup > 0 {
		t.Errorf("%d duplicate jobs", dup)
	}
}
