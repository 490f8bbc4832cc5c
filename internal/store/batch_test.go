package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestBatches checks that the plain events of a call are stored as one
// message per bus and routed one by one, with their ids, times and data;
// that a forwarded event keeps its message of its own; and that an event of
// a batch that cannot be routed is set aside alone while the others of its
// batch are routed once.
func TestBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Now()
	var evs []Event
	for i := range 7 {
		bus := []string{"default", "other.bus"}[i%2]
		evs = append(evs, Event{ID: fmt.Sprintf("e%d", i), Bus: bus, Ingested: now.Add(time.Duration(i)), Data: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	evs = append(evs, Event{ID: "fwd", Bus: "default", Ingested: now, Data: []byte(`{"f":1}`), Forwarded: true, DedupeID: "job"})
	for i, err := range s.AppendEventsEach(ctx, evs) {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if info, err := s.events.Info(ctx); err != nil || info.State.Msgs != 3 {
		t.Fatalf("messages stored: %v, %v; want 3 (a batch per bus and the forwarded event)", info, err)
	}
	p, err := s.ReadPending(ctx)
	if err != nil || len(p.Unrouted) != 8 {
		t.Fatalf("pending: %v, %v", p.Unrouted, err)
	}
	var mu sync.Mutex
	routed := map[string]Event{}
	counts := map[string]int{}
	var asides []string
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- s.RouteEvents(rctx, func(_ context.Context, batch []Event) ([]error, func() error) {
			mu.Lock()
			defer mu.Unlock()
			errs := make([]error, len(batch))
			for i, ev := range batch {
				counts[ev.ID]++
				if ev.ID == "e3" {
					errs[i] = &Unroutable{Reason: "test", Final: true, Err: errors.New("no")}
					continue
				}
				routed[ev.ID] = ev
			}
			return errs, nil
		}, func(ev Event, reason string) {
			mu.Lock()
			defer mu.Unlock()
			asides = append(asides, ev.ID)
		})
	}()
	info, err := s.events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message acknowledged", func() bool {
		from, err := s.unroutedFrom(ctx)
		return err == nil && from == info.State.LastSeq+1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, ev := range evs {
		if ev.ID == "e3" {
			continue
		}
		got, ok := routed[ev.ID]
		if !ok || got.Bus != ev.Bus || !got.Ingested.Equal(ev.Ingested) || string(got.Data) != string(ev.Data) || got.Forwarded != ev.Forwarded {
			t.Errorf("event %d: routed %+v, want %+v", i, got, ev)
		}
		if counts[ev.ID] != 1 {
			t.Errorf("event %s routed %d times", ev.ID, counts[ev.ID])
		}
	}
	if !slices.Equal(asides, []string{"e3"}) {
		t.Errorf("set aside %v, want [e3]", asides)
	}
	if sum, err := s.Aside(ctx, "other.bus"); err != nil || sum.Count != 1 || sum.EventID != "e3" {
		t.Errorf("aside: %+v, %v", sum, err)
	}
}

// TestBatchEncoding round-trips batches and checks that damaged ones are
// refused, never misread.
func TestBatchEncoding(t *testing.T) {
	t.Parallel()
	evs := []Event{{ID: "a", Bus: "b", Ingested: time.Unix(0, 12345), Data: []byte(`{}`)},
		{ID: "", Bus: "b", Ingested: time.Unix(0, -5), Data: nil},
		{ID: "ccc", Bus: "b", Ingested: time.Unix(1700000000, 999), Data: []byte(`{"x":"` + string(make([]byte, 300)) + `"}`)}}
	msg := batchMsg("b", evs, []int{0, 1, 2})
	got, err := eventsFromMsg(msg.Header, msg.Data)
	if err != nil || len(got) != 3 {
		t.Fatalf("decoded %v, %v", got, err)
	}
	for i := range evs {
		if got[i].ID != evs[i].ID || got[i].Bus != "b" || !got[i].Ingested.Equal(evs[i].Ingested) || string(got[i].Data) != string(evs[i].Data) {
			t.Errorf("event %d: %+v, want %+v", i, got[i], evs[i])
		}
	}
	for cut := range len(msg.Data) {
		if _, err := decodeBatch(msg.Header, msg.Data[:cut]); err == nil {
			t.Fatalf("a batch cut at %d of %d bytes decoded", cut, len(msg.Data))
		}
	}
	if _, err := decodeBatch(msg.Header, append(slices.Clone(msg.Data), 0)); err == nil {
		t.Error("a batch with a byte after its events decoded")
	}
	for _, n := range []string{"0", "-1", "x", "4", "70000"} {
		h := nats.Header{}
		h.Set(hdrBatch, n)
		if _, err := decodeBatch(h, msg.Data); err == nil {
			t.Errorf("a batch claiming %s events decoded", n)
		}
	}
}

// FuzzDecodeBatch: any bytes under any count decode or are refused,
// never panic, and what decodes encodes to a batch that decodes the same
// (the reader accepts varints longer than they need be, so not always to
// the same bytes).
func FuzzDecodeBatch(f *testing.F) {
	msg := batchMsg("b", []Event{{ID: "a", Ingested: time.Unix(0, 7), Data: []byte(`{}`)}}, []int{0})
	f.Add(1, msg.Data)
	f.Add(2, []byte{1, 'a', 2, 0})
	f.Fuzz(func(t *testing.T, n int, data []byte) {
		h := nats.Header{}
		h.Set(hdrBatch, fmt.Sprint(n))
		h.Set(hdrBus, "b")
		evs, err := decodeBatch(h, data)
		if err != nil {
			return
		}
		idx := make([]int, len(evs))
		for i := range idx {
			idx[i] = i
		}
		again := batchMsg("b", evs, idx)
		back, err := decodeBatch(again.Header, again.Data)
		if err != nil || len(back) != len(evs) {
			t.Fatalf("%d events decoded, encoded again and decoded: %d, %v", len(evs), len(back), err)
		}
		for i := range evs {
			if back[i].ID != evs[i].ID || !back[i].Ingested.Equal(evs[i].Ingested) || string(back[i].Data) != string(evs[i].Data) {
				t.Fatalf("event %d: %+v, then %+v", i, evs[i], back[i])
			}
		}
	})
}
