package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stats describes the streams and their consumers, for diagnostics: the
// messages each stream holds and, per consumer, the messages not yet
// delivered and those delivered but not acknowledged.
func (s *Store) Stats(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, name := range []string{eventsStream, jobsStream, batchStream, delayStream} {
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

// TargetKey is the short key of a rule's target in subjects: a hash, so
// that any rule ARN and target id make one subject token.
func TargetKey(ruleArn, targetID string) string {
	return string(appendTargetKey(make([]byte, 0, 16), ruleArn, targetID))
}

// appendTargetKey appends TargetKey(ruleArn, targetID) to dst: the hash
// in 16 hexadecimal digits.
func appendTargetKey(dst []byte, ruleArn, targetID string) []byte {
	h := targetHash(ruleArn, targetID)
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[h>>shift&0xf])
	}
	return dst
}

// FNV-1a, computed in place (hash/fnv allocates its state and a copy of
// each string written): targetHash is TargetKey's, of the rule ARN, a 0
// byte and the target id; eventHash an event id's, for its bucket.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

func targetHash(ruleArn, targetID string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(ruleArn); i++ {
		h = (h ^ uint64(ruleArn[i])) * fnvPrime64
	}
	h *= fnvPrime64 // the 0 byte between them
	for i := 0; i < len(targetID); i++ {
		h = (h ^ uint64(targetID[i])) * fnvPrime64
	}
	return h
}

func eventHash(eventID string) uint32 {
	h := uint32(fnvOffset32)
	for i := 0; i < len(eventID); i++ {
		h = (h ^ uint32(eventID[i])) * fnvPrime32
	}
	return h
}

// Depths are the backlogs of the delivery pipeline.
type Depths struct {
	Unrouted int // messages of the events stream not yet routed (each a call's events for one bus)
	Jobs     int // deliveries queued, due now (one a message, or in batches)
	Delayed  int // deliveries waiting for a retry or a deferral
	Parked   int // deliveries parked while their destination fails
	Replayed int // deliveries of replayed events queued on the replay lane
}

// PipelineDepths reads the backlogs from the streams and the router.
func (s *Store) PipelineDepths(ctx context.Context) (Depths, error) {
	var d Depths
	for _, part := range []struct {
		stream string
		n      *int
	}{{jobsStream, &d.Jobs}, {delayStream, &d.Delayed}, {parkStream, &d.Parked}, {replayStream, &d.Replayed}} {
		st, err := s.js.Stream(ctx, part.stream)
		if err != nil {
			return d, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return d, err
		}
		*part.n = int(info.State.Msgs)
	}
	batched, err := s.queuedInBatches(ctx)
	if err != nil {
		return d, err
	}
	d.Jobs += batched
	// Unknown is not none: only a router that has not started yet (no
	// consumer) has nothing to report.
	c, err := s.events.Consumer(ctx, routerConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return d, err
	}
	d.Unrouted = int(ci.NumPending) + ci.NumAckPending
	return d, nil
}

// RetryBacklog returns the number of deliveries waiting for a retry or a
// deferral, by TargetKey. It reads the delay stream's subject counts, so
// its cost grows with the number of targets that have a backlog, not with
// the backlog.
func (s *Store) RetryBacklog(ctx context.Context) (map[string]int, error) {
	ds, err := s.js.Stream(ctx, delayStream)
	if err != nil {
		return nil, err
	}
	info, err := ds.Info(ctx, jetstream.WithSubjectFilter(delaySubject+".*.*"))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for subj, n := range info.State.Subjects {
		key := subj[strings.LastIndexByte(subj, '.')+1:]
		out[key] += int(n)
	}
	return out, nil
}

// dedupeWindow is how long the events, jobs and delay streams remember
// message ids. It covers a write repeated after a crash (the repeat comes
// within the consumer's ack wait after a restart), and it costs memory for
// every message written within it: a shorter window holds more messages
// per byte of RAM, at the price of a duplicate (never a loss) after a
// restart slower than the window.
const dedupeWindow = 2 * time.Minute

// msgID turns an id of any length into a short message id (128 bits of
// SHA-256, base64): the streams keep every id of their duplicate window in
// memory, and job ids name an event, a rule ARN and a target.
func msgID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
