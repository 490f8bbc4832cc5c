package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"bridgeport/internal/natstest"
)

// TestScheduleHolderKilled runs two server processes on a three-node NATS
// cluster with a rule due every minute, and kills the node that fires
// schedules with SIGKILL at a due time (a few milliseconds either side of
// it): the other node takes the schedule over, and every due time reaches
// the target exactly once, none missed.
func TestScheduleHolderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and server processes, and waits for two minutes to turn")
	}
	t.Parallel()
	urls := natstest.Cluster(t, 3)
	var mu sync.Mutex
	fired := map[string]int{} // due time -> deliveries
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct{ Time string }
		if json.Unmarshal(body, &ev) == nil {
			mu.Lock()
			fired[ev.Time]++
			mu.Unlock()
		}
	}))
	defer sink.Close()
	count := func(due time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		return fired[due.Format(time.RFC3339)]
	}

	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	// A starts first, so it takes the schedule lease.
	a := startChildWith(t, t.TempDir(), "--nats-url "+urls[0]+" --secret-key "+key)
	defer a.stop()
	routeToSink(t, a, "every", "unused", sink.URL, 100)
	if _, err := a.client().PutRule(context.Background(), &eventbridge.PutRuleInput{Name: aws.String("every"),
		ScheduleExpression: aws.String("cron(* * * * ? *)")}); err != nil {
		t.Fatal(err)
	}
	b := startChildWith(t, t.TempDir(), "--nats-url "+urls[1]+" --secret-key "+key)
	defer b.stop()

	first := time.Now().Add(2 * time.Second).Truncate(time.Minute).Add(time.Minute)
	waitUntil(t, "the first due time fired", func() bool { return count(first) > 0 })
	kill := first.Add(time.Minute + time.Duration(rand.IntN(40)-20)*time.Millisecond)
	time.Sleep(time.Until(kill))
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	killed := first.Add(time.Minute)
	t.Logf("node A killed %s after the due time %s; it had delivered it %d times", time.Since(killed).Round(time.Millisecond),
		killed.Format(time.TimeOnly), count(killed))
	// B takes over once A's lease runs out (15 s), and fires the due time
	// A was killed at if A had not stored it.
	waitUntil(t, "the due time A was killed at fired", func() bool { return count(killed) > 0 })
	t.Logf("the due time A was killed at reached the target %s after it", time.Since(killed).Round(time.Millisecond))
	after := killed.Add(time.Minute)
	waitUntil(t, "the next due time fired", func() bool { return count(after) > 0 })
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	for due, n := range fired {
		if n != 1 {
			t.Errorf("due time %s delivered %d times", due, n)
		}
	}
	for _, due := range []time.Time{first, killed, after} {
		if fired[due.Format(time.RFC3339)] == 0 {
			t.Errorf("due time %s missed", due.Format(time.RFC3339))
		}
	}
}
