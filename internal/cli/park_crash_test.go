package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// gauge reads one series of a server's metrics, or -1.
func gauge(addr, series string) float64 {
	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestKillNineDuringDrain parks thousands of events on a dead endpoint,
// brings the endpoint back, and kills the server with SIGKILL twice while
// the parked events drain: every event PutEvents acknowledged is
// delivered.
func TestKillNineDuringDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	const events = 3000
	var healthy atomic.Bool
	var mu sync.Mutex
	delivered := map[string]int{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		delivered[ev.ID]++
		mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	// Retries up to 5 s apart: the default policy's 185 attempts then take
	// minutes, longer than the test, and probes come at most 5 s apart.
	const flags = "--retry-max-delay 5s"
	dir := t.TempDir()
	c := startChildWith(t, dir, flags)
	ctx := context.Background()
	eb := c.client()
	// 300 a second: the drain of 3,000 takes about 10 s, long enough to be
	// cut short twice.
	routeToSink(t, c, "r", "park", sink.URL, 300)
	acked := map[string]bool{}
	for i := 0; len(acked) < events; i++ {
		var entries []types.PutEventsRequestEntry
		for j := range 10 {
			entries = append(entries, types.PutEventsRequestEntry{Source: aws.String("park"), DetailType: aws.String("t"), Detail: aws.String(fmt.Sprintf(`{"i":%d,"j":%d}`, i, j))})
		}
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Entries {
			if e.EventId != nil {
				acked[*e.EventId] = true
			}
		}
	}
	// The endpoint's circuit opens after five failures: nearly every event
	// is parked without an attempt.
	deadline := time.Now().Add(2 * time.Minute)
	for gauge(c.addr, `bridgeport_pipeline_depth{stage="parked"}`) < events*9/10 {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d events parked after 2 minutes", gauge(c.addr, `bridgeport_pipeline_depth{stage="parked"}`), events)
		}
		time.Sleep(200 * time.Millisecond)
	}
	healthy.Store(true)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for id := range acked {
			if delivered[id] > 0 {
				n++
			}
		}
		return n
	}
	// Kill it twice during the drain: once something was delivered, and
	// again a moment later.
	for kill := range 2 {
		for count() == 0 || kill > 0 && count() < events/3 {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
		t.Logf("SIGKILL with %d of %d delivered", count(), events)
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.cmd.Wait()
		c = startChildWith(t, dir, flags)
	}
	defer func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		_ = c.cmd.Wait()
	}()
	// Wait while it makes progress.
	last, lastAt := count(), time.Now()
	for last < events {
		time.Sleep(200 * time.Millisecond)
		if n := count(); n > last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) > time.Minute {
			t.Fatalf("no progress for a minute: %d of %d acknowledged events delivered", last, events)
		}
	}
	mu.Lock()
	dups := 0
	for _, n := range delivered {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("all %d events delivered after two kills during the drain; %d duplicate deliveries", events, dups)
}
