package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/wait"
)

// Stranded jobs. The engine's consumer of a work-queue stream can pass over
// messages and never deliver them, even after a restart: in one measured
// replay of 100,000 events, 218 jobs stayed on the replay lane below the
// sequence its consumer had delivered and acknowledged up to, with nothing
// awaiting acknowledgement (nats-server issues 4736 and 7680 describe the
// same). RescueStranded finds such jobs and writes them again.

// RescueStranded writes again the jobs the consumers of the live and the
// replay lane passed over (rescueStranded), and returns how many there
// were on each.
func (s *Store) RescueStranded(ctx context.Context) (live, replayed int, err error) {
	if live, err = s.rescueStranded(ctx, jobsStream, jobsConsumer); err != nil {
		return live, 0, err
	}
	batched, err := s.rescueStranded(ctx, batchStream, batchConsumer)
	live += batched
	if err != nil {
		return live, 0, err
	}
	replayed, err = s.rescueStranded(ctx, replayStream, replayConsumer)
	return live, replayed, err
}

// rescueStranded writes again, at the end of the stream, the jobs of the
// work-queue stream the durable consumer has passed over without
// delivering, deletes them where they were, and returns how many it
// rescued. A job is stranded when its sequence is at or below the
// consumer's acknowledgement floor: everything the consumer delivered up
// to there was acknowledged, so removed from a work queue, and it
// delivers a sequence once, then again only what awaits an
// acknowledgement above the floor; nothing would deliver such a job.
// Jobs in flight are above the floor, so a lane under load is swept too.
//
// Safe to run from several nodes at once: each copy carries a message id
// made from the stranded job's, so a second copy within the deduplication
// window is dropped; the copy is written before the original is deleted,
// so a crash between the two leaves a job twice, not none.
func (s *Store) rescueStranded(ctx context.Context, stream, durable string) (int, error) {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("rescue %s: %w", stream, err)
	}
	cons, err := st.Consumer(ctx, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil // not consumed yet: nothing passed over
	}
	if err != nil {
		return 0, fmt.Errorf("rescue %s: %w", stream, err)
	}
	// The consumer first: its floor then bounds what, still in the stream,
	// nothing will deliver (the floor only rises).
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("rescue %s: %w", stream, err)
	}
	upTo := ci.AckFloor.Stream
	if upTo == 0 {
		return 0, nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("rescue %s: %w", stream, err)
	}
	if info.State.Msgs == 0 || info.State.FirstSeq > upTo {
		return 0, nil
	}
	// The consumer moves its floor before the stream removes what was
	// acknowledged: a job at or below the floor is stranded only if it is
	// still there a moment later.
	var candidates []uint64
	err = scan(ctx, st, ">", info.State.FirstSeq, func(m *jetstream.RawStreamMsg) bool {
		if m.Sequence > upTo {
			return false
		}
		candidates = append(candidates, m.Sequence)
		return len(candidates) < strandedBatch
	})
	if err != nil {
		return 0, fmt.Errorf("rescue %s: %w", stream, err)
	}
	settle := strandedSettle
	if s.strandedSettle > 0 {
		settle = s.strandedSettle
	}
	if len(candidates) == 0 || !wait.For(ctx, settle) {
		return 0, ctx.Err()
	}
	n := 0
	for _, seq := range candidates {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // it was being removed
		}
		if err != nil {
			return n, fmt.Errorf("rescue %s: %w", stream, err)
		}
		id := msgID(m.Header.Get(jetstream.MsgIDHeader) + "/stranded/" + strconv.FormatUint(m.Sequence, 10))
		if _, err := s.js.PublishMsg(ctx, copyOf(m), jetstream.WithMsgID(id)); err != nil {
			return n, fmt.Errorf("rescue %s: write again: %w", stream, err)
		}
		if err := st.DeleteMsg(ctx, m.Sequence); err != nil {
			// Another node's rescue may have deleted it first.
			if _, gerr := st.GetMsg(ctx, m.Sequence); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
				return n, fmt.Errorf("rescue %s: delete: %w", stream, err)
			}
		}
		n++
	}
	return n, nil
}

// strandedBatch bounds the jobs one rescue looks at; strandedSettle is how
// long a job at or below the floor must stay to be taken as stranded. The
// engine removes an acknowledged job within milliseconds, on a cluster
// once the acknowledgement is replicated, which a leader's change can hold
// up for seconds: a job taken as stranded too soon would be delivered
// twice.
const (
	strandedBatch  = 1000
	strandedSettle = 10 * time.Second
)
