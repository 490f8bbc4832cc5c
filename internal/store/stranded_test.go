package store

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestRescueStranded strands jobs on the replay lane as the engine was seen
// to (below the sequence its consumer delivered, awaiting no
// acknowledgement: here with a consumer that first took only another
// shard's jobs, then all) and checks that they are written again once and
// delivered, and that a job in flight is not touched.
func TestRescueStranded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	s.strandedSettle = 200 * time.Millisecond
	job := func(id, target string) Job {
		return Job{EventID: id, Bus: "b", RuleArn: "arn:aws:events:us-east-1:000000000000:rule/b/r", TargetID: target, Ingested: time.Now(), Event: []byte(`{"id":"` + id + `"}`)}
	}
	a, b, c := job("a", "t"), job("b", "t"), job("c", "u")
	for i := 0; c.Shard() == a.Shard(); i++ {
		c = job("c", "u"+strconv.Itoa(i))
	}
	if n, err := s.rescueStranded(ctx, replayStream, replayConsumer); err != nil || n != 0 {
		t.Fatalf("no consumer yet: rescued %d, %v", n, err)
	}
	if err := s.AppendReplayJobs(ctx, []Job{a, b, c}); err != nil {
		t.Fatal(err)
	}
	config := jetstream.ConsumerConfig{Durable: replayConsumer, AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: replaySubject + "." + strconv.Itoa(c.Shard())}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, replayStream, config)
	if err != nil {
		t.Fatal(err)
	}
	take := func(n int) []jetstream.Msg {
		t.Helper()
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []jetstream.Msg
		for m := range batch.Messages() {
			got = append(got, m)
		}
		return got
	}
	eventID := func(m jetstream.Msg) string {
		t.Helper()
		j, err := jobFromMsg(m.Headers(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		return j.EventID
	}
	got := take(1)
	if len(got) != 1 || eventID(got[0]) != "c" {
		t.Fatalf("the consumer took %d jobs, want c", len(got))
	}
	// Now all shards: the consumer is past a and b.
	config.FilterSubject = ""
	if cons, err = s.js.CreateOrUpdateConsumer(ctx, replayStream, config); err != nil {
		t.Fatal(err)
	}
	if err := got[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	// Two nodes sweeping at once write each job again once.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.rescueStranded(ctx, replayStream, replayConsumer); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st, err := s.js.Stream(ctx, replayStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 || info.State.FirstSeq <= 3 {
		t.Fatalf("after the rescue the lane holds %d jobs from sequence %d, want 2 after 3", info.State.Msgs, info.State.FirstSeq)
	}
	got = take(3)
	ids := map[string]bool{}
	if len(got) == 0 {
		t.Fatal("nothing delivered after the rescue")
	}
	for _, m := range got {
		ids[eventID(m)] = true
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || !ids["a"] || !ids["b"] {
		t.Fatalf("delivered after the rescue: %v (%d jobs), want a and b", ids, len(got))
	}
	if n, err := s.rescueStranded(ctx, replayStream, replayConsumer); err != nil || n != 0 {
		t.Fatalf("nothing stranded: rescued %d, %v", n, err)
	}
	// A job in flight (delivered, not acknowledged yet) is above the
	// floor: left where it is.
	if err := s.AppendReplayJobs(ctx, []Job{job("d", "t")}); err != nil {
		t.Fatal(err)
	}
	got = take(1)
	if len(got) != 1 || eventID(got[0]) != "d" {
		t.Fatalf("the consumer took %d jobs, want d", len(got))
	}
	if n, err := s.rescueStranded(ctx, replayStream, replayConsumer); err != nil || n != 0 {
		t.Fatalf("a job in flight: rescued %d, %v", n, err)
	}
	if err := got[0].DoubleAck(ctx); err != nil {
		t.Fatalf("the job in flight, acknowledged: %v", err)
	}
}
