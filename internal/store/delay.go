package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/wait"
)

// Delay tiers: a job that must wait goes to the stream subject of the
// longest tier not longer than its wait. Each tier has one consumer that
// takes its head message, waits until it is due (every message of a tier
// waited the same time, so the head is the earliest), then moves it to a
// shorter tier or back to the jobs stream. Waiting jobs cost disk, not
// memory, and never hold a delivery consumer's ack slots.
var delayTiers = []time.Duration{100 * time.Millisecond, time.Second, 10 * time.Second, time.Minute, 10 * time.Minute, time.Hour}

const (
	delayStream  = "BP_DELAY"
	delaySubject = "bp.delay"
	hdrDue       = "Bp-Due"      // when the job is due again, unix nanoseconds
	hdrTierDue   = "Bp-Tier-Due" // when it leaves its tier
	hdrHop       = "Bp-Hop"      // moves between tiers so far
)

func (s *Store) ensureDelay(ctx context.Context) error {
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        delayStream,
		Description: "delivery jobs waiting for a retry or a deferral, by delay tier",
		Subjects:    []string{delaySubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  dedupeWindow,
	})
	if err != nil {
		return fmt.Errorf("delay stream: %w", err)
	}
	return nil
}

// tierFor returns the tier for a wait.
func tierFor(wait time.Duration) int {
	t := 0
	for i, d := range delayTiers {
		if d <= wait {
			t = i
		}
	}
	return t
}

// Delay stores a job to be queued again after wait. It returns once the
// job is stored.
func (s *Store) Delay(ctx context.Context, j Job, wait time.Duration) error {
	now := time.Now()
	msg, id := delayMsg(j, now.Add(wait), now, 0)
	_, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID(id)))
	if err != nil {
		return fmt.Errorf("delay job: %w", err)
	}
	return nil
}

// delayMsg builds the message that keeps j in its tier. Its id names the
// job, its due time and the hop, so a move repeated after a crash is a
// duplicate JetStream drops, while each real move is new.
func delayMsg(j Job, due, now time.Time, hop int) (*nats.Msg, string) {
	tier := tierFor(due.Sub(now))
	tierDue := now.Add(delayTiers[tier])
	if due.Before(tierDue) {
		tierDue = due
	}
	// One subject per tier and target, so that the backlog of each target
	// can be read from the stream's subject counts.
	msg := jobMsg(delaySubject+"."+strconv.Itoa(tier)+"."+TargetKey(j.RuleArn, j.TargetID), &j)
	msg.Header.Set(hdrDue, strconv.FormatInt(due.UnixNano(), 10))
	msg.Header.Set(hdrTierDue, strconv.FormatInt(tierDue.UnixNano(), 10))
	msg.Header.Set(hdrHop, strconv.Itoa(hop))
	return msg, j.ID() + "@" + strconv.FormatInt(due.UnixNano(), 10) + "#" + strconv.Itoa(hop)
}

// RunDelays moves delayed jobs along until ctx ends: one goroutine per
// tier.
func (s *Store) RunDelays(ctx context.Context) error {
	var wg sync.WaitGroup
	for tier := range delayTiers {
		cons, err := s.durable(ctx, delayStream, jetstream.ConsumerConfig{
			Durable: "delay-" + strconv.Itoa(tier),
			// The bare tier subject holds jobs delayed by earlier versions.
			FilterSubjects: []string{delaySubject + "." + strconv.Itoa(tier), delaySubject + "." + strconv.Itoa(tier) + ".*"},
			AckPolicy:      jetstream.AckExplicitPolicy,
			// The head is held while it waits, with progress reported
			// every few seconds, so that after a crash it is offered
			// again within AckWait rather than after the tier's delay.
			AckWait:       10 * time.Second,
			MaxAckPending: 1,
		})
		if err != nil {
			return fmt.Errorf("delay consumer: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runTier(ctx, tier, cons)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Store) runTier(ctx context.Context, tier int, cons jetstream.Consumer) {
	s.consume(ctx, "delay-"+strconv.Itoa(tier), cons, 1, func(m jetstream.Msg) {
		if err := s.moveDelayed(ctx, m); err != nil && ctx.Err() == nil {
			s.log.Warn("move delayed job", "error", err)
			_ = m.NakWithDelay(time.Second)
		}
	})
}

// moveDelayed waits until a delayed job leaves its tier, then moves it to
// a shorter tier or back to the jobs stream, and acknowledges it.
func (s *Store) moveDelayed(ctx context.Context, m jetstream.Msg) error {
	h := m.Headers()
	due, err1 := strconv.ParseInt(h.Get(hdrDue), 10, 64)
	tierDue, err2 := strconv.ParseInt(h.Get(hdrTierDue), 10, 64)
	j, err3 := jobFromMsg(h, m.Data())
	if err := errors.Join(err1, err2, err3); err != nil {
		_ = m.Term()
		return fmt.Errorf("unreadable delayed job: %w", err)
	}
	if !sleepHolding(ctx, m, time.Until(time.Unix(0, tierDue))) {
		return ctx.Err()
	}
	now := time.Now()
	dueAt := time.Unix(0, due)
	if dueAt.Sub(now) >= delayTiers[0] {
		hop, _ := strconv.Atoi(h.Get(hdrHop))
		msg, id := delayMsg(j, dueAt, now, hop+1)
		if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID(id))); err != nil {
			return err
		}
	} else {
		// Less than the shortest tier to go: wait here.
		if !sleepHolding(ctx, m, time.Until(dueAt)) {
			return ctx.Err()
		}
		if err := s.AppendJobs(ctx, []Job{j}); err != nil {
			return err
		}
	}
	return m.Ack()
}

// sleepHolding sleeps like wait.For while telling JetStream every 3 seconds
// that m is still being worked on.
func sleepHolding(ctx context.Context, m jetstream.Msg, d time.Duration) bool {
	const beat = 3 * time.Second
	for d > beat {
		if !wait.For(ctx, beat) {
			return false
		}
		_ = m.InProgress()
		d -= beat
	}
	return wait.For(ctx, d)
}

// ConsumeJobs hands queued jobs to fn on up to workers goroutines until ctx
// ends. A job is acknowledged (removed) when fn returns nil, so fn must
// make its outcome durable first (a retry delayed, a dead letter written);
// when fn fails, the job is offered again after a pause. fn runs with
// workCtx, which may outlive ctx: when ctx ends, no new job starts, the
// jobs in hand finish (or fail when workCtx ends, and are handed back),
// and ConsumeJobs returns once they have.
func (s *Store) ConsumeJobs(ctx, workCtx context.Context, workers int, fn func(context.Context, Job) error) error {
	return s.consumeJobs(ctx, workCtx, jobsStream, jobsConsumer, "invokes targets", workers, fn)
}

// ConsumeReplayJobs is ConsumeJobs for the replay lane, with its own
// workers: replayed events are delivered at the pace those allow, and
// never queue ahead of live ones.
func (s *Store) ConsumeReplayJobs(ctx, workCtx context.Context, workers int, fn func(context.Context, Job) error) error {
	return s.consumeJobs(ctx, workCtx, replayStream, replayConsumer, "invokes targets with replayed events", workers, fn)
}

// The durable consumers of the live and the replay lane.
const (
	jobsConsumer   = "deliver"
	replayConsumer = "deliver-replayed"
)

func (s *Store) consumeJobs(ctx, workCtx context.Context, stream, durable, desc string, workers int, fn func(context.Context, Job) error) error {
	cons, err := s.durable(ctx, stream, jetstream.ConsumerConfig{
		Durable:     durable,
		Description: desc,
		AckPolicy:   jetstream.AckExplicitPolicy,
		// An attempt takes at most the 5-second invocation timeout plus
		// writing its outcome; after a crash the jobs in flight are
		// offered again when this runs out.
		AckWait:       15 * time.Second,
		MaxAckPending: workers * 4,
	})
	if err != nil {
		return fmt.Errorf("%s consumer: %w", durable, err)
	}
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				j, err := jobFromMsg(m.Headers(), m.Data())
				if err != nil {
					s.log.Error("unreadable job", "error", err)
					_ = m.Term()
					continue
				}
				if err := fn(workCtx, j); err != nil {
					if workCtx.Err() != nil {
						// Shutting down: offered again at once, to this
						// node's successor or another node.
						_ = m.Nak()
						continue
					}
					s.log.Warn("job", "event_id", j.EventID, "error", err)
					_ = m.NakWithDelay(time.Second)
					continue
				}
				_ = m.Ack()
			}
		}()
	}
	s.consume(ctx, durable, cons, workers*2, func(m jetstream.Msg) {
		select {
		case work <- m:
		case <-ctx.Done():
			_ = m.Nak() // not started: handed back
		}
	})
	close(work)
	wg.Wait()
	return nil
}
