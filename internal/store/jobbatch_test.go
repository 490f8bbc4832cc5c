package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// batchOf returns the jobs of events events for targets targets each, as
// the router makes them: an event's jobs share its body.
func batchOf(events, targets, size int) []Job {
	now := time.Now()
	var jobs []Job
	for e := range events {
		body := bytes.Repeat([]byte{byte('a' + e%26)}, size)
		for t := range targets {
			jobs = append(jobs, Job{EventID: fmt.Sprintf("e%d", e), Bus: "default", RuleArn: fmt.Sprintf("arn:rule/%d", t),
				TargetID: "t" + fmt.Sprint(t), Ingested: now.Add(time.Duration(e)), Event: body})
		}
	}
	return jobs
}

func sameJobs(a, b []Job) bool {
	return slices.EqualFunc(a, b, func(x, y Job) bool {
		return x.EventID == y.EventID && x.Bus == y.Bus && x.RuleArn == y.RuleArn && x.TargetID == y.TargetID &&
			x.Ingested.Equal(y.Ingested) && x.Attempt == y.Attempt && x.Deferrals == y.Deferrals &&
			x.Redrive == y.Redrive && x.RedriveRun == y.RedriveRun && x.Replay == y.Replay && bytes.Equal(x.Event, y.Event)
	})
}

// TestJobBatchEncoding: a batch reads back as the jobs written, every
// field, with each event's body stored once; a later format is told apart
// from a corrupt batch.
func TestJobBatchEncoding(t *testing.T) {
	jobs := batchOf(3, 4, 1000)
	jobs[1].Attempt, jobs[1].Deferrals = 3, 7
	jobs[2].Redrive, jobs[2].RedriveRun, jobs[5].Replay = "dlq-1", "run-1", "replay-1"
	jobs[7].Event = []byte(`{"other":true}`) // same event id, another body
	data := appendJobBatch(nil, jobs)
	got, err := decodeJobBatch(data)
	if err != nil || !sameJobs(got, jobs) {
		t.Fatalf("decoded %d jobs, %v", len(got), err)
	}
	// Three bodies of 1,000 bytes and one small one, not twelve.
	if len(data) > 4*1000+12*80 {
		t.Errorf("batch of 12 jobs of 3 events: %d bytes", len(data))
	}
	later := slices.Clone(data)
	later[0] = batchFormat + 1
	if _, err := decodeJobBatch(later); !errors.Is(err, errBatchFormat) {
		t.Errorf("later format: %v", err)
	}
	for _, cut := range []int{0, 1, 5, len(data) / 2, len(data) - 1} {
		if _, err := decodeJobBatch(data[:cut]); err == nil || errors.Is(err, errBatchFormat) {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
	if _, err := decodeJobBatch(append(slices.Clone(data), 0)); err == nil {
		t.Error("a byte too many: read")
	}
}

// FuzzDecodeJobBatch: no input makes the decoder panic or allocate beyond
// its size, and what it reads writes back to the same jobs.
func FuzzDecodeJobBatch(f *testing.F) {
	f.Add(appendJobBatch(nil, batchOf(2, 3, 10)))
	f.Add(appendJobBatch(nil, nil))
	f.Add([]byte{batchFormat, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{batchFormat, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, err := decodeJobBatch(data)
		if err != nil {
			return
		}
		again, err := decodeJobBatch(appendJobBatch(nil, jobs))
		if err != nil || !sameJobs(again, jobs) {
			t.Fatalf("read %d jobs; written and read again: %d, %v", len(jobs), len(again), err)
		}
	})
}

// TestAppendRoutedInBatches: the router's jobs are stored as batches of at
// most maxBatchJobs, or maxBatchBytes of bodies; depth, QueuedJobs and
// ReadPending count the jobs inside them; the same jobs queued again
// (the router's message offered again after a crash) are stored once.
func TestAppendRoutedInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	jobs := batchOf(10, 13, 1024) // 130 jobs: 64, 64 and 2
	for range 2 {
		if err := s.AppendRouted(ctx, jobs, nil, true); err != nil {
			t.Fatal(err)
		}
	}
	// Four events of 200 KB for one target: 512 KB of bodies at most.
	big := batchOf(4, 1, 200<<10)
	if err := s.AppendRouted(ctx, big, nil, true); err != nil {
		t.Fatal(err)
	}
	if n := s.batchDepth(t); n != 5 {
		t.Errorf("batch messages: %d, want 3 + 2", n)
	}
	d, err := s.PipelineDepths(ctx)
	if err != nil || d.Jobs != 134 {
		t.Errorf("depth: %+v, %v; want 134 jobs", d, err)
	}
	queued, err := s.QueuedJobs(ctx, 1000)
	if err != nil || !sameJobs(queued, append(slices.Clone(jobs), big...)) {
		t.Errorf("queued: %d jobs, %v", len(queued), err)
	}
	if q, err := s.QueuedJobs(ctx, 70); err != nil || len(q) != 70 {
		t.Errorf("queued, up to 70: %d, %v", len(q), err)
	}
	p, err := s.ReadPending(ctx)
	if err != nil || len(p.Jobs) != 10 || len(p.Jobs["e3"]) != 14 {
		t.Errorf("pending: %d events, e3 %v, %v", len(p.Jobs), p.Jobs["e3"], err)
	}
}

// TestConsumeJobBatches: every job of a batch runs; those whose handler
// fails are queued again one a message, and only they; the batches are
// removed once settled.
func TestConsumeJobBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	jobs := batchOf(10, 13, 100)
	if err := s.AppendRouted(ctx, jobs, nil, true); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	stop := consumeBatches(t, s, ctx, 16, func(_ context.Context, j Job) error {
		mu.Lock()
		seen[j.ID()]++
		mu.Unlock()
		if j.TargetID == "t3" {
			return errors.New("store unavailable")
		}
		return nil
	})
	waitFor(t, "batches settled", func() bool {
		d, err := s.PipelineDepths(ctx)
		return err == nil && d.Jobs == 10 && s.batchDepth(t) == 0
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	for _, j := range jobs {
		if seen[j.ID()] != 1 {
			t.Errorf("%s ran %d times", j.ID(), seen[j.ID()])
		}
	}
	queued, err := s.QueuedJobs(ctx, 100)
	if err != nil || len(queued) != 10 {
		t.Fatalf("queued again: %d, %v", len(queued), err)
	}
	for _, j := range queued {
		if j.TargetID != "t3" {
			t.Errorf("queued again: %s", j.ID())
		}
	}
}

// consumeBatches runs s.ConsumeJobBatches with workCtx, slots and fn until
// the stop it returns is called; stop returns once the consumer has.
func consumeBatches(t *testing.T, s *Store, workCtx context.Context, slots int, fn func(context.Context, Job) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ConsumeJobBatches(ctx, workCtx, slots, fn) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// batchDepth is the number of batch messages stored.
func (s *Store) batchDepth(t *testing.T) int {
	st, err := s.js.Stream(context.Background(), batchStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}

// TestBatchKeptInHand: a batch whose jobs take longer than the consumer's
// acknowledgement wait is not offered again while they run.
func TestBatchKeptInHand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	s.batchAckWait = 1500 * time.Millisecond // kept alive every 500 ms
	if err := s.AppendRouted(ctx, batchOf(2, 1, 10), nil, true); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	runs := 0
	stop := consumeBatches(t, s, ctx, 4, func(context.Context, Job) error {
		mu.Lock()
		runs++
		mu.Unlock()
		time.Sleep(3 * s.batchAckWait)
		return nil
	})
	waitFor(t, "the batch settled", func() bool { return s.batchDepth(t) == 0 })
	stop()
	if runs != 2 {
		t.Errorf("2 jobs ran %d times", runs)
	}
}

// TestBatchStopped: when the node stops, the jobs of a batch in hand
// whose calls did not end are queued again one a message; the job that
// ended is not run again, and the batch is removed.
func TestBatchStopped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	jobs := batchOf(5, 1, 10)
	if err := s.AppendRouted(ctx, jobs, nil, true); err != nil {
		t.Fatal(err)
	}
	wctx, stopWork := context.WithCancel(ctx)
	started := make(chan Job, 5)
	stop := consumeBatches(t, s, wctx, 10, func(ctx context.Context, j Job) error {
		started <- j
		if j.EventID == jobs[0].EventID {
			return nil
		}
		<-ctx.Done() // a call that does not end before the node stops
		return ctx.Err()
	})
	for range jobs {
		<-started
	}
	stopWork() // the node stops: its calls' context ends
	stop()
	queued, err := s.QueuedJobs(ctx, 10)
	slices.SortFunc(queued, func(a, b Job) int { return strings.Compare(a.EventID, b.EventID) })
	if err != nil || !sameJobs(queued, jobs[1:]) {
		t.Errorf("queued again: %d jobs, %v", len(queued), err)
	}
	if n := s.batchDepth(t); n != 0 {
		t.Errorf("%d batches left", n)
	}
}

// TestBatchesTakenAsRoomFrees: the consumer takes batches while fewer jobs
// than its slots are in hand, not all that are queued.
func TestBatchesTakenAsRoomFrees(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	for e := range 8 { // 8 batches of 5 jobs
		jobs := batchOf(1, 5, 10)
		for i := range jobs {
			jobs[i].EventID = fmt.Sprintf("e%d", e)
		}
		if err := s.AppendRouted(ctx, jobs, nil, true); err != nil {
			t.Fatal(err)
		}
	}
	var running, most atomic.Int32
	release := make(chan struct{})
	stop := consumeBatches(t, s, ctx, 10, func(context.Context, Job) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		running.Add(-1)
		return nil
	})
	waitFor(t, "10 jobs in hand", func() bool { return running.Load() >= 10 })
	time.Sleep(300 * time.Millisecond) // time to take more, if it would
	if n := most.Load(); n > 15 {
		t.Errorf("%d jobs in hand with 10 slots and batches of 5", n)
	}
	close(release)
	waitFor(t, "every batch settled", func() bool { return s.batchDepth(t) == 0 })
	stop()
}

// TestRoutedAgainQueuedAlone: the router is told when a message is offered
// again (Event.Again), and the jobs AppendRouted queues alone are stored
// once each however they are grouped.
func TestRoutedAgainQueuedAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Now()
	if err := s.AppendEvents(ctx, []Event{{ID: "e1", Bus: "default", Ingested: now, Data: []byte(`{}`)},
		{ID: "e2", Bus: "default", Ingested: now, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var offers [][]bool
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.RouteEvents(rctx, func(_ context.Context, evs []Event) ([]error, func() error) {
			mu.Lock()
			defer mu.Unlock()
			var again []bool
			for _, ev := range evs {
				again = append(again, ev.Again)
			}
			offers = append(offers, again)
			errs := make([]error, len(evs))
			if len(offers) == 1 {
				errs[1] = errors.New("not routed this time")
			}
			return errs, nil
		}, nil)
	}()
	waitFor(t, "the message offered again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(offers) >= 2
	})
	stop()
	if !slices.Equal(offers[0], []bool{false, false}) || !slices.Equal(offers[1], []bool{true, true}) {
		t.Errorf("offers: %v", offers)
	}
	jobs := batchOf(2, 3, 10)
	if err := s.AppendRouted(ctx, jobs[:4], nil, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRouted(ctx, jobs, nil, false); err != nil {
		t.Fatal(err)
	}
	if queued, err := s.QueuedJobs(ctx, 10); err != nil || !sameJobs(queued, jobs) {
		t.Errorf("queued: %d jobs, %v", len(queued), err)
	}
	if n := s.batchDepth(t); n != 0 {
		t.Errorf("%d batches", n)
	}
}

// TestBatchOfLaterFormatLeft: a batch this version cannot read because a
// later one wrote it is neither run nor removed: it waits for a node that
// reads it.
func TestBatchOfLaterFormatLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	msgs, ids := batchMsgs(batchOf(1, 2, 10))
	msgs[0].Data[0] = batchFormat + 1
	if _, err := s.js.PublishMsg(ctx, msgs[0], jetstream.WithMsgID(ids[0])); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRouted(ctx, batchOf(1, 1, 10), nil, true); err != nil { // one it reads, after it
		t.Fatal(err)
	}
	var runs atomic.Int32
	stop := consumeBatches(t, s, ctx, 4, func(context.Context, Job) error {
		runs.Add(1)
		return nil
	})
	waitFor(t, "the readable batch settled", func() bool { return runs.Load() == 1 && s.batchDepth(t) == 1 })
	stop()
	if n := runs.Load(); n != 1 {
		t.Errorf("%d jobs ran, want the readable batch's 1", n)
	}
	// The readable batch is removed once acknowledged; the later format's
	// stays.
	waitFor(t, "only the later format's batch stored", func() bool {
		if s.batchDepth(t) != 1 {
			return false
		}
		st, err := s.js.Stream(ctx, batchStream)
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetMsg(ctx, 1)
		return err == nil && len(m.Data) > 0 && m.Data[0] == batchFormat+1
	})
}
