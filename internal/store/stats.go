package store

import (
	"context"
	"fmt"
	"strings"
)

// Stats describes the streams and their consumers, for diagnostics: the
// messages each stream holds and, per consumer, the messages not yet
// delivered and those delivered but not acknowledged.
func (s *Store) Stats(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, name := range []string{eventsStream, jobsStream, delayStream} {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return "", fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return "", fmt.Errorf("stream %s: %w", name, err)
		}
		fmt.Fprintf(&b, "%s: %d messages (seq %d-%d)\n", name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			fmt.Fprintf(&b, "  consumer %s: %d pending, %d awaiting ack, %d redelivered, ack floor %d, delivered %d\n",
				ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.AckFloor.Stream, ci.Delivered.Stream)
		}
		if err := lister.Err(); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}
