package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Job is one delivery to do: an event matched a rule, and the rule has this
// target. Jobs carry the event itself, so that delivering, retrying,
// rate-limiting and dead-lettering never match it again.
type Job struct {
	EventID  string
	Bus      string
	RuleArn  string
	TargetID string
	Ingested time.Time // when PutEvents accepted the event
	Attempt  int       // attempts made so far
	// Deferrals counts the times the job was put back without an attempt
	// (rate limit, target busy).
	Deferrals int
	// Redrive names the dead-letter message a redriven job came from, so
	// that its ids differ from those of the event's first delivery.
	Redrive string
	// RedriveRun names the redrive run that queued the job; its final
	// outcome is recorded for that run (RecordRedrive).
	RedriveRun string
	// Replay names the replay that sent the event again, so that its ids
	// differ from those of the event's first delivery.
	Replay string
	Event  []byte // the event envelope
}

// ID is the job's message id: one per event, rule, target, attempt and
// deferral, so that a job re-queued after a retry or a deferral is not taken
// for a duplicate, while one queued twice at the same step (after a crash)
// is.
func (j *Job) ID() string {
	id := j.EventID + "/" + j.RuleArn + "/" + j.TargetID + "/" + strconv.Itoa(j.Attempt) + "." + strconv.Itoa(j.Deferrals)
	if j.Redrive != "" {
		id += "/redrive/" + j.Redrive
	}
	if j.Replay != "" {
		id += "/replay/" + j.Replay
	}
	return id
}

// Shard is the subject shard of the job's target.
func (j *Job) Shard() int {
	h := fnv.New32a()
	h.Write([]byte(j.RuleArn))
	h.Write([]byte{0})
	h.Write([]byte(j.TargetID))
	return int(h.Sum32() % JobShards)
}

const (
	hdrEventID = "Bp-Event-Id"
	hdrRule    = "Bp-Rule"
	hdrTarget  = "Bp-Target"
	hdrAttempt = "Bp-Attempt"
	hdrDefer   = "Bp-Deferrals"
	hdrRedrive = "Bp-Redrive"
	hdrRun     = "Bp-Redrive-Run"
	hdrReplay  = "Bp-Replay"
)

// AppendJobs queues jobs one a message and returns once every one is
// stored. A job already queued (same ID) inside the stream's duplicate
// window is not queued again.
func (s *Store) AppendJobs(ctx context.Context, jobs []Job) error {
	return s.appendRouted(ctx, jobsSubject, jobs, nil)
}

// AppendRouted queues the router's jobs, in batches (see jobbatch.go) or
// one a message, and writes events to archives, and returns once every
// write is stored. Writes repeated inside the duplicate window are not
// stored twice: the same event in the same archive, the same job queued
// alone, the same batch (the same jobs in the same order). So jobs that
// may have been queued before, alone or in a batch of other jobs, must be
// queued alone: a batch of them would be stored again.
func (s *Store) AppendRouted(ctx context.Context, jobs []Job, archived []Archived, inBatches bool) error {
	if !inBatches {
		return s.appendRouted(ctx, jobsSubject, jobs, archived)
	}
	msgs, ids := batchMsgs(jobs)
	return s.publishRouted(ctx, msgs, ids, archived)
}

// AppendReplayJobs queues the jobs of replayed events on the replay lane
// (the replayJobs stream), which delivery serves with fewer workers than
// the live jobs, so that a replay does not queue ahead of live traffic.
func (s *Store) AppendReplayJobs(ctx context.Context, jobs []Job) error {
	return s.appendRouted(ctx, replaySubject, jobs, nil)
}

// appendRouted queues jobs one a message on subject's shards and writes
// events to archives.
func (s *Store) appendRouted(ctx context.Context, subject string, jobs []Job, archived []Archived) error {
	msgs, ids := make([]*nats.Msg, len(jobs)), make([]string, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		msgs[i], ids[i] = jobMsg(subject+"."+strconv.Itoa(j.Shard()), j), msgID(j.ID())
	}
	return s.publishRouted(ctx, msgs, ids, archived)
}

// publishRouted writes the messages of jobs, each with its message id, and
// events to archives, and waits until every write is stored.
func (s *Store) publishRouted(ctx context.Context, msgs []*nats.Msg, ids []string, archived []Archived) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs)+len(archived))
	for i, msg := range msgs {
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(ids[i]))
		if err != nil {
			return fmt.Errorf("queue jobs: %w", err)
		}
		futures = append(futures, f)
	}
	for i := range archived {
		msg, opt := archived[i].msg()
		f, err := s.js.PublishMsgAsync(msg, opt)
		if err != nil {
			return fmt.Errorf("archive event: %w", err)
		}
		futures = append(futures, f)
	}
	return waitAcks(ctx, futures)
}

func jobMsg(subject string, j *Job) *nats.Msg {
	msg := nats.NewMsg(subject)
	msg.Header.Set(hdrEventID, j.EventID)
	msg.Header.Set(hdrBus, j.Bus)
	msg.Header.Set(hdrRule, j.RuleArn)
	msg.Header.Set(hdrTarget, j.TargetID)
	msg.Header.Set(hdrIngested, strconv.FormatInt(j.Ingested.UnixNano(), 10))
	msg.Header.Set(hdrAttempt, strconv.Itoa(j.Attempt))
	msg.Header.Set(hdrDefer, strconv.Itoa(j.Deferrals))
	if j.Redrive != "" {
		msg.Header.Set(hdrRedrive, j.Redrive)
	}
	if j.RedriveRun != "" {
		msg.Header.Set(hdrRun, j.RedriveRun)
	}
	if j.Replay != "" {
		msg.Header.Set(hdrReplay, j.Replay)
	}
	msg.Data = j.Event
	return msg
}

func jobFromMsg(h nats.Header, data []byte) (Job, error) {
	ns, err := strconv.ParseInt(h.Get(hdrIngested), 10, 64)
	if err != nil {
		return Job{}, errors.New("job without ingestion time")
	}
	attempt, err := strconv.Atoi(h.Get(hdrAttempt))
	if err != nil {
		return Job{}, errors.New("job without attempt count")
	}
	deferrals, _ := strconv.Atoi(h.Get(hdrDefer))
	return Job{
		Deferrals:  deferrals,
		Redrive:    h.Get(hdrRedrive),
		RedriveRun: h.Get(hdrRun),
		Replay:     h.Get(hdrReplay),
		EventID:    h.Get(hdrEventID),
		Bus:        h.Get(hdrBus),
		RuleArn:    h.Get(hdrRule),
		TargetID:   h.Get(hdrTarget),
		Ingested:   time.Unix(0, ns),
		Attempt:    attempt,
		Event:      data,
	}, nil
}

// QueuedJobs returns up to limit queued jobs, those queued one a message
// first, then those in batches, each oldest first, without taking
// them off the queue. It is for inspection (tests, diagnostics), not for
// delivery.
func (s *Store) QueuedJobs(ctx context.Context, limit int) ([]Job, error) {
	var out []Job
	var bad error
	err := scan(ctx, s.jobs, jobsSubject+".>", 1, func(m *jetstream.RawStreamMsg) bool {
		j, err := jobFromMsg(m.Header, m.Data)
		if err != nil {
			bad = fmt.Errorf("read job %d: %w", m.Sequence, err)
			return false
		}
		out = append(out, j)
		return len(out) < limit
	})
	if err == nil {
		err = bad
	}
	if err != nil || len(out) >= limit {
		return out, err
	}
	err = s.scanBatchJobs(ctx, func(j Job) bool {
		out = append(out, j)
		return len(out) < limit
	})
	return out, err
}

// ConsumeJobsRaw takes up to n queued jobs as a plain pull consumer of the
// jobs stream does, acknowledging each, with nothing else done (no
// decoding, no delivery, no outcome written), and returns how many it took
// and how long that took: the raw engine's consume-and-acknowledge rate,
// which `bridgeport bench` compares delivery with. It stops early when ctx
// ends or no job comes for a second.
func (s *Store) ConsumeJobsRaw(ctx context.Context, n int) (int, time.Duration, error) {
	cons, err := s.js.CreateConsumer(ctx, jobsStream, jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckExplicitPolicy,
		MaxAckPending:     2048,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("raw consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return 0, 0, fmt.Errorf("raw consumer: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	start, got := time.Now(), 0
	last := start
	idle := time.AfterFunc(time.Second, it.Stop)
	defer idle.Stop()
	for got < n {
		m, err := it.Next()
		if err != nil {
			break
		}
		idle.Reset(time.Second)
		if err := m.Ack(); err != nil {
			return got, last.Sub(start), fmt.Errorf("raw consumer: %w", err)
		}
		got++
		last = time.Now()
	}
	return got, last.Sub(start), nil
}
