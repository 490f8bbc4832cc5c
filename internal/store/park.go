package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/wait"
)

// Parked jobs: the jobs of a target whose destination keeps failing wait
// here, one subject per target, in the order they were parked, until the
// destination answers again or their retry policy runs out. Unlike delayed
// jobs they cost nothing while they wait: no timer, no move between tiers,
// no attempt; a million of them are a million messages on disk.
const (
	parkStream    = "BP_PARK"
	parkSubject   = "bp.park"
	hdrNextDue    = "Bp-Next-Due"  // when the job's next attempt was due, unix nanoseconds
	hdrParkedAt   = "Bp-Parked-At" // when it was parked, unix nanoseconds
	hdrLastCode   = "Bp-Last-Code" // the error that parked it
	hdrLastReason = "Bp-Last-Message"
)

func (s *Store) ensurePark(ctx context.Context) error {
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        parkStream,
		Description: "delivery jobs parked while their destination fails, by target",
		Subjects:    []string{parkSubject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("park stream: %w", err)
	}
	return nil
}

// Parked is a parked job: the job (its Attempt counts the attempts made),
// when its next attempt was due, and the error of the last one.
type Parked struct {
	Job
	NextDue     time.Time
	ParkedAt    time.Time // zero: now
	LastCode    string
	LastMessage string
}

// Park stores jobs until their destination answers again, and returns once
// every one is stored. The writes carry no message id: JetStream would keep
// each id in memory for the duplicate window, a million of them for a
// million parked jobs, and a park repeated after a crash is only a
// duplicate delivery later, which at-least-once delivery allows.
func (s *Store) Park(ctx context.Context, jobs []Parked) error {
	futures := make([]jetstream.PubAckFuture, 0, len(jobs))
	for i := range jobs {
		p := &jobs[i]
		msg := jobMsg(parkSubject+"."+TargetKey(p.RuleArn, p.TargetID), &p.Job)
		msg.Header.Set(hdrNextDue, strconv.FormatInt(p.NextDue.UnixNano(), 10))
		at := p.ParkedAt
		if at.IsZero() {
			at = time.Now()
		}
		msg.Header.Set(hdrParkedAt, strconv.FormatInt(at.UnixNano(), 10))
		if p.LastCode != "" {
			msg.Header.Set(hdrLastCode, p.LastCode)
			msg.Header.Set(hdrLastReason, p.LastMessage)
		}
		f, err := s.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("park job: %w", err)
		}
		futures = append(futures, f)
	}
	return waitAcks(ctx, futures)
}

func parkedFromMsg(h nats.Header, data []byte) (Parked, error) {
	j, err := jobFromMsg(h, data)
	if err != nil {
		return Parked{}, err
	}
	due, err := strconv.ParseInt(h.Get(hdrNextDue), 10, 64)
	if err != nil {
		return Parked{}, errors.New("parked job without its next due time")
	}
	at, _ := strconv.ParseInt(h.Get(hdrParkedAt), 10, 64)
	return Parked{Job: j, NextDue: time.Unix(0, due), ParkedAt: time.Unix(0, at), LastCode: h.Get(hdrLastCode), LastMessage: h.Get(hdrLastReason)}, nil
}

// ParkedCounts returns the number of jobs parked for each target (by
// TargetKey) that has any.
func (s *Store) ParkedCounts(ctx context.Context) (map[string]int, error) {
	st, err := s.js.Stream(ctx, parkStream)
	if err != nil {
		return nil, fmt.Errorf("park stream: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(parkSubject+".*"))
	if err != nil {
		return nil, fmt.Errorf("park stream: %w", err)
	}
	out := make(map[string]int, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, parkSubject+".")] = int(n)
	}
	return out, nil
}

// OldestParked returns the first job parked for a target that has some.
func (s *Store) OldestParked(ctx context.Context, targetKey string) (Parked, bool, error) {
	st, err := s.js.Stream(ctx, parkStream)
	if err != nil {
		return Parked{}, false, fmt.Errorf("park stream: %w", err)
	}
	raw, err := st.GetMsg(ctx, 0, jetstream.WithGetMsgSubject(parkSubject+"."+targetKey))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Parked{}, false, nil
	}
	if err != nil {
		return Parked{}, false, fmt.Errorf("park stream: %w", err)
	}
	p, err := parkedFromMsg(raw.Header, raw.Data)
	return p, err == nil, err
}

// ErrHandBack, returned by a KeepParked fn, gives its job back at once: it
// is offered again, before the jobs parked after it, when there is room
// in hand.
var ErrHandBack = errors.New("parked job handed back")

// KeepParked hands the jobs parked for one target to fn, in the order they
// were parked, until ctx ends. It holds at most inHand() of them at a time
// (never more than maxInHand), and asks again whenever a job is let go or
// more says the number may have grown: so a keeper whose jobs only wait
// holds one, and one that drains holds maxInHand.
//
// Every node may run it for the same target: they share one durable
// consumer, so each job is in one node's hands at a time. While fn holds a
// job, the node tells JetStream it is still at work on it; if the node
// dies, the job is offered again within the ack wait. When fn returns nil
// the job is done (removed); ErrHandBack gives it back at once; another
// error gives it back to be offered again after a pause. The consumer goes
// away by itself a minute after no node asks for its jobs.
func (s *Store) KeepParked(ctx context.Context, targetKey string, maxInHand int, inHand func() int, more <-chan struct{}, fn func(context.Context, Parked) error) error {
	name := "park-" + targetKey
	cons, err := s.durable(ctx, parkStream, jetstream.ConsumerConfig{
		Durable:           name,
		Description:       "jobs parked for one target",
		FilterSubject:     parkSubject + "." + targetKey,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           30 * time.Second,
		MaxAckPending:     maxInHand,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("park consumer: %w", err)
	}
	var wg sync.WaitGroup
	// One goroutine tells JetStream, every 10 s, that the jobs in hand are
	// still at work, rather than one for each of them.
	var hmu sync.Mutex
	held := map[jetstream.Msg]struct{}{}
	let := make(chan struct{}, 1) // a job was let go
	holdCtx, stopHold := context.WithCancel(context.WithoutCancel(ctx))
	holding := make(chan struct{})
	go func() {
		defer close(holding)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-holdCtx.Done():
				return
			case <-tick.C:
			}
			hmu.Lock()
			for m := range held {
				_ = m.InProgress()
			}
			hmu.Unlock()
		}
	}()
	take := func(m jetstream.Msg) {
		p, err := parkedFromMsg(m.Headers(), m.Data())
		if err != nil {
			s.log.Error("unreadable parked job", "error", err)
			_ = m.Term()
			return
		}
		if ctx.Err() != nil {
			_ = m.Nak()
			return
		}
		hmu.Lock()
		held[m] = struct{}{}
		hmu.Unlock()
		s.inHand.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := fn(ctx, p)
			switch {
			case err == nil:
				if aerr := m.Ack(); aerr != nil && ctx.Err() == nil {
					s.log.Warn("ack parked job", "event_id", p.EventID, "error", aerr)
				}
			case errors.Is(err, ErrHandBack), ctx.Err() != nil:
				_ = m.Nak()
			default:
				s.log.Warn("parked job", "event_id", p.EventID, "error", err)
				_ = m.NakWithDelay(time.Second)
			}
			hmu.Lock()
			delete(held, m)
			hmu.Unlock()
			s.inHand.Add(-1)
			select {
			case let <- struct{}{}:
			default:
			}
		}()
	}
	for ctx.Err() == nil {
		hmu.Lock()
		room := min(inHand(), maxInHand) - len(held)
		hmu.Unlock()
		if room <= 0 {
			select {
			case <-ctx.Done():
			case <-let:
			case <-more:
			}
			continue
		}
		// A fetch of what there is room for, rather than a standing
		// subscription: the server must not push jobs this node has no
		// room for. It expires after pullExpiry (see consume).
		fctx, cancel := context.WithTimeout(ctx, pullExpiry)
		batch, err := cons.Fetch(room, jetstream.FetchContext(fctx))
		if err == nil {
			for m := range batch.Messages() {
				take(m)
			}
			err = batch.Error()
		}
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("fetch parked jobs", "consumer", name, "error", err)
			wait.For(ctx, time.Second)
		}
	}
	wg.Wait() // work begun outlives ctx by the shutdown grace
	stopHold()
	<-holding
	return nil
}

// ParkedInHand returns how many parked jobs this node holds, all targets
// together.
func (s *Store) ParkedInHand() int { return int(s.inHand.Load()) }

// Backlog is what waits for one target: deliveries in the retry tiers
// (retries and deferrals) and parked ones, and when the oldest of them was
// accepted (approximately: the first in each tier and in the park).
type Backlog struct {
	Delayed, Parked int
	Oldest          time.Time
}

// TargetBacklog reads one target's backlog: a few direct reads, whatever
// its size.
func (s *Store) TargetBacklog(ctx context.Context, targetKey string) (Backlog, error) {
	var b Backlog
	oldest := func(stream jetstream.Stream, subject string) error {
		raw, err := stream.GetMsg(ctx, 0, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		j, err := jobFromMsg(raw.Header, raw.Data)
		if err == nil && (b.Oldest.IsZero() || j.Ingested.Before(b.Oldest)) {
			b.Oldest = j.Ingested
		}
		return nil
	}
	for _, part := range []struct {
		stream, subjects string
		n                *int
	}{{delayStream, delaySubject + ".*." + targetKey, &b.Delayed}, {parkStream, parkSubject + "." + targetKey, &b.Parked}} {
		st, err := s.js.Stream(ctx, part.stream)
		if err != nil {
			return b, fmt.Errorf("%s: %w", part.stream, err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(part.subjects))
		if err != nil {
			return b, fmt.Errorf("%s: %w", part.stream, err)
		}
		for subj, n := range info.State.Subjects {
			*part.n += int(n)
			if err := oldest(st, subj); err != nil {
				return b, fmt.Errorf("%s: %w", part.stream, err)
			}
		}
	}
	return b, nil
}
