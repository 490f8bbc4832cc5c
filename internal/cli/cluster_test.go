package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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
	var mu sync.Mutex
	delivered := map[string]int{}
	calls := 0
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusBadRequest)
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

	ctx := context.Background()
	var amu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, c := range []*child{a, b} {
		eb := c.client()
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
					if c == a {
						return // node A is gone
					}
					continue
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
	time.Sleep(time.Duration(400+rand.IntN(400)) * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	time.Sleep(300 * time.Millisecond) // B carries on alone
	close(stop)
	wg.Wait()

	sq := awssqs.New(awssqs.Options{BaseEndpoint: aws.String(b.addr), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(crashKey, crashSecret, "")})
	dlq := b.addr + "/000000000000/crash-dlq"
	deadLettered := map[string]int{}
	deadline := time.Now().Add(120 * time.Second)
	for {
		out, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			VisibilityTimeout: 3})
		if err == nil && len(out.Messages) > 0 {
			var del []sqstypes.DeleteMessageBatchRequestEntry
			for i, m := range out.Messages {
				var ev struct{ ID string }
				_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &ev)
				deadLettered[ev.ID]++
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
			}
			_, _ = sq.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(dlq), Entries: del})
		}
		mu.Lock()
		lostD, lostQ := 0, 0
		for id := range acked {
			if delivered[id] == 0 {
				lostD++
			}
			if deadLettered[id] == 0 {
				lostQ++
			}
		}
		dup := 0
		for _, n := range delivered {
			dup += n - 1
		}
		mu.Unlock()
		if lostD == 0 && lostQ == 0 {
			t.Logf("node A killed under load: %d events acknowledged by A and B, all delivered and dead-lettered by B; %d duplicate deliveries", len(acked), dup)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after losing node A: %d of %d events never delivered, %d never dead-lettered", lostD, len(acked), lostQ)
		}
	}
}
