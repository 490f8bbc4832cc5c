package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Pending is the work the delivery pipeline still holds: events not yet
// routed, and jobs queued, waiting in the delay tiers, or parked.
type Pending struct {
	// Unrouted are the ids of the events past the router's acknowledgement
	// floor: not routed yet, or routed out of order while older ones wait.
	Unrouted map[string]bool
	// Jobs are, by event id, the target ids of its queued, delayed or
	// parked jobs.
	Jobs map[string][]string
}

// ReadPending reads the pipeline's pending work, one lookup per message:
// for inspecting a stopped or idle pipeline (tests, diagnostics), not for
// a large backlog under load.
func (s *Store) ReadPending(ctx context.Context) (Pending, error) {
	p := Pending{Unrouted: map[string]bool{}, Jobs: map[string][]string{}}
	from, err := s.unroutedFrom(ctx)
	if err != nil {
		return p, err
	}
	if err := scan(ctx, s.events, eventsSubject+".>", from, func(m *jetstream.RawStreamMsg) bool {
		events, err := eventsFromMsg(m.Header, m.Data)
		if err != nil {
			return true // the router drops it
		}
		for _, ev := range events {
			p.Unrouted[ev.ID] = true
		}
		return true
	}); err != nil {
		return p, err
	}
	delay, err := s.js.Stream(ctx, delayStream)
	if err != nil {
		return p, fmt.Errorf("delay stream: %w", err)
	}
	park, err := s.js.Stream(ctx, parkStream)
	if err != nil {
		return p, fmt.Errorf("park stream: %w", err)
	}
	replayed, err := s.js.Stream(ctx, replayStream)
	if err != nil {
		return p, fmt.Errorf("replay jobs stream: %w", err)
	}
	for _, st := range []struct {
		stream  jetstream.Stream
		subject string
	}{{s.jobs, jobsSubject + ".>"}, {replayed, replaySubject + ".>"}, {delay, delaySubject + ".>"}, {park, parkSubject + ".>"}} {
		if err := scan(ctx, st.stream, st.subject, 1, func(m *jetstream.RawStreamMsg) bool {
			id := m.Header.Get(hdrEventID)
			p.Jobs[id] = append(p.Jobs[id], m.Header.Get(hdrTarget))
			return true
		}); err != nil {
			return p, err
		}
	}
	err = s.scanBatchJobs(ctx, func(j Job) bool {
		p.Jobs[j.EventID] = append(p.Jobs[j.EventID], j.TargetID)
		return true
	})
	return p, err
}

// unroutedFrom is the sequence of the events stream from which events may
// not be routed yet: past the router's acknowledgement floor.
func (s *Store) unroutedFrom(ctx context.Context) (uint64, error) {
	c, err := s.events.Consumer(ctx, routerConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("router: %w", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("router: %w", err)
	}
	return info.AckFloor.Stream + 1, nil
}

// scan hands fn the messages of stream on subject from sequence from on,
// in order, until fn returns false: each a lookup of the next message on
// the subject, so deleted messages cost nothing.
func scan(ctx context.Context, stream jetstream.Stream, subject string, from uint64, fn func(*jetstream.RawStreamMsg) bool) error {
	for seq := from; ; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s at %d: %w", subject, seq, err)
		}
		if !fn(m) {
			return nil
		}
		seq = m.Sequence + 1
	}
}

// copyOf returns a stored message as a message to write again: its
// subject, headers and data, but not the conditions of its original write
// (Nats-Expected-*), which do not hold for the copy. Its message id is
// kept unless the write sets another.
func copyOf(raw *jetstream.RawStreamMsg) *nats.Msg {
	out := nats.NewMsg(raw.Subject)
	for k, v := range raw.Header {
		if !strings.HasPrefix(k, "Nats-Expected") {
			out.Header[k] = v
		}
	}
	out.Data = raw.Data
	return out
}
