package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/wait"
)

// The delivery attempt log: one record per attempt to invoke a target (and
// per invocation that ended without one), in a stream with a retention
// limit by age and size, on a subject per target and event bucket (one of
// 16 by a hash of the event id), so that a target's attempts since a time
// are read without scanning the rest, and an event's among 1/16 of them.
// Subjects cost the server memory: for each block of the stream written or
// read in the last two minutes, JetStream keeps a count for every subject
// in it (about 60 bytes each). A subject per event would cost that for
// every event; 256 buckets a target, as before 2026-12-05, made a million
// events parked on 100 targets hold 45 MB of such counts for two minutes,
// scanned by every garbage collection.
const (
	attemptsStream  = "BP_ATTEMPTS"
	attemptsSubject = "bp.att"
)

// Attempt is one record of the attempt log. Nothing secret is in it: error
// messages are redacted before they get here, and no request or response
// bodies are kept.
type Attempt struct {
	Time      time.Time     `json:"time"` // when the attempt started
	EventID   string        `json:"eventId"`
	Bus       string        `json:"bus"`
	RuleArn   string        `json:"ruleArn"`
	TargetID  string        `json:"targetId"`
	TargetArn string        `json:"targetArn"`
	Attempt   int           `json:"attempt"` // 1 for the first
	Duration  time.Duration `json:"durationNs"`
	Status    int           `json:"status,omitempty"` // the endpoint's HTTP status
	Code      string        `json:"code,omitempty"`   // the error code of a failed attempt
	Message   string        `json:"message,omitempty"`
	// Outcome is what became of the invocation after this attempt.
	Outcome string     `json:"outcome"`
	RetryAt *time.Time `json:"retryAt,omitempty"`
	// DeadLetterQueue names the queue the event went to, when it did.
	DeadLetterQueue string `json:"deadLetterQueue,omitempty"`
}

// Outcomes of the attempt log.
const (
	OutcomeDelivered     = "DELIVERED"
	OutcomeRetrying      = "RETRYING"
	OutcomeDeadLettered  = "DEAD_LETTERED"
	OutcomeDLQFailed     = "DEAD_LETTER_FAILED" // not delivered, and not stored in its dead-letter queue
	OutcomeDropped       = "DROPPED"            // not delivered, no dead-letter queue
	OutcomeNotDelivered  = "NOT_DELIVERED"      // not delivered; what became of it is in a later record
	OutcomeSetAside      = "SET_ASIDE"          // the event could not be routed; it is kept in the aside stream
	OutcomeParked        = "PARKED"             // waiting for its failing destination to answer again
	defaultAttemptsAge   = 7 * 24 * time.Hour
	defaultAttemptsBytes = 1 << 30
)

// Failed reports whether the attempt failed.
func (a *Attempt) Failed() bool { return a.Code != "" }

// attemptLimits are the attempt log's retention limits, by age and size.
func (s *Store) attemptLimits() (time.Duration, int64) {
	age, size := s.cfg.AttemptsMaxAge, s.cfg.AttemptsMaxBytes
	if age <= 0 {
		age = defaultAttemptsAge
	}
	if size <= 0 {
		size = defaultAttemptsBytes
	}
	return age, size
}

func (s *Store) ensureAttempts(ctx context.Context) error {
	age, size := s.attemptLimits()
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        attemptsStream,
		Description: "delivery attempts, by target and event",
		Subjects:    []string{attemptsSubject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      age,
		MaxBytes:    size,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("attempts stream: %w", err)
	}
	return nil
}

// routerKey takes the place of a target key in records of the router's
// (events set aside). It is not a hex hash, so no target has it.
const routerKey = "router"

// eventBucket is one of 16 buckets, by a hash of the event id: "x0" to
// "xf", names that are not among the old buckets' (two hex digits).
func eventBucket(eventID string) string {
	return fmt.Sprintf("x%x", eventHash(eventID)&0xf)
}

// oldEventBucket is the bucket of the records written before 2026-12-05,
// one of 256: "00" to "ff". They are read until the log's age limit drops
// them.
func oldEventBucket(eventID string) string {
	return fmt.Sprintf("%02x", eventHash(eventID)&0xff)
}

// LogAttempt adds a record to the attempt log without waiting for it to be
// stored: the log is for diagnosis, and delivery does not wait on it. The
// record joins its subject's pending message (attemptBatch), published
// within attemptLinger; a query on this node publishes what is pending
// first (JetStream stores it moments later, as it did each record).
func (s *Store) LogAttempt(a Attempt) {
	scratch := recordScratch.Get().(*attemptRecord)
	defer recordScratch.Put(scratch)
	var ok bool
	if scratch.data, ok = appendAttempt(scratch.data[:0], &a); !ok {
		return
	}
	scratch.subject = appendAttemptSubject(scratch.subject[:0], &a)
	s.attempts.add(s, scratch)
}

// attemptRecord is a record and its subject, encoded.
type attemptRecord struct{ subject, data []byte }

var recordScratch = sync.Pool{New: func() any { return new(attemptRecord) }}

// Records are published in batches. A message a record, encoded with
// encoding/json, cost 9.6-9.9 µs of CPU, the engine's store of it
// included (BenchmarkLogAttempt), about a tenth of a delivery's. So a
// record joins the pending message of its subject, its records one JSON
// object a line, and the pending messages are published together
// attemptLinger after the first of them (a plain publish: JetStream stores
// them, no acknowledgement is asked for), or at once when one has
// attemptBatchRecords records or they hold attemptPendingBytes. A message
// of one record is what earlier versions wrote, and is read the same way.
// A node killed loses its pending records, as it loses what its
// connection had not yet sent: at most attemptLinger of the log, never an
// event.
const (
	attemptLinger       = 20 * time.Millisecond
	attemptBatchRecords = 256
	attemptPendingBytes = 1 << 20
)

// attemptBatch holds the attempt log's pending messages by subject.
type attemptBatch struct {
	mu      sync.Mutex
	pending map[string]*pendingAttempts
	bytes   int
	armed   bool // a flush is due within attemptLinger
}

type pendingAttempts struct {
	data []byte
	n    int
}

// add appends a record to its subject's pending message.
func (b *attemptBatch) add(s *Store, r *attemptRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending[string(r.subject)]
	if p == nil {
		if b.pending == nil {
			b.pending = make(map[string]*pendingAttempts)
		}
		p = &pendingAttempts{}
		b.pending[string(r.subject)] = p
	}
	if p.n > 0 {
		p.data = append(p.data, '\n')
	}
	p.data = append(p.data, r.data...)
	p.n++
	b.bytes += len(r.data) + 1
	switch {
	case p.n >= attemptBatchRecords || b.bytes >= attemptPendingBytes:
		b.flushLocked(s)
	case !b.armed:
		b.armed = true
		time.AfterFunc(attemptLinger, func() { b.flush(s) })
	}
}

// flush publishes the pending messages.
func (b *attemptBatch) flush(s *Store) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked(s)
}

// flushLocked publishes the pending messages, in the order of their
// records for each subject, and forgets the subjects that had none since
// the last flush. A publish copies its message into the connection's
// buffer (and writes the buffer out when it fills, as each record's
// publish did before batching), so the buffers are kept for the next.
func (b *attemptBatch) flushLocked(s *Store) {
	b.armed = false
	b.bytes = 0
	for subject, p := range b.pending {
		if p.n == 0 {
			delete(b.pending, subject)
			continue
		}
		if err := s.nc.Publish(subject, p.data); err != nil && !s.nc.IsClosed() {
			s.log.Warn("attempt log", "error", err)
		}
		p.data, p.n = p.data[:0], 0
		if cap(p.data) > 64<<10 {
			p.data = nil
		}
	}
}

// AttemptFilter selects records of the attempt log.
type AttemptFilter struct {
	EventID string
	// TargetKeys, when set, limits the records to these targets (see
	// TargetKey).
	TargetKeys []string
	Since      time.Time
	FailedOnly bool
	// Limit is the most records returned, the newest by the time their
	// attempts started; 0: 1,000. At most 1,000,000 records are read to
	// find them (and the rest of the message of the last).
	Limit int
}

// maxScan bounds the records one query reads.
const maxScan = 1_000_000

// noResponderWait bounds how long a query asks again while its new
// consumer is not yet known to the server it asks.
const noResponderWait = 5 * time.Second

// Attempts reads records of the attempt log and returns the newest
// matching ones, oldest first. Since selects the records of attempts that
// started since then.
func (s *Store) Attempts(ctx context.Context, f AttemptFilter) ([]Attempt, error) {
	s.attempts.flush(s)
	buckets := []string{"*"}
	if f.EventID != "" {
		buckets = []string{eventBucket(f.EventID), oldEventBucket(f.EventID)}
	}
	keys := f.TargetKeys
	if len(keys) == 0 {
		keys = []string{"*"}
	}
	var subjects []string
	for _, k := range keys {
		for _, b := range buckets {
			subjects = append(subjects, attemptsSubject+"."+k+"."+b)
		}
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !f.Since.IsZero() {
		since := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	cons, err := s.js.OrderedConsumer(ctx, attemptsStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("attempt log: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("attempt log: %w", err)
	}
	var out []Attempt
	remaining := info.NumPending
	scanned := uint64(0)
	var unanswered time.Time // when a pull request first found no responder
	for remaining > 0 && scanned < maxScan {
		batch, err := cons.Fetch(int(min(remaining, 256)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, fmt.Errorf("attempt log: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err == nil {
				remaining = md.NumPending
			}
			for data := range bytes.SplitSeq(m.Data(), []byte{'\n'}) {
				scanned++
				var a Attempt
				if json.Unmarshal(data, &a) != nil || (f.FailedOnly && !a.Failed()) || (f.EventID != "" && a.EventID != f.EventID) ||
					(!f.Since.IsZero() && a.Time.Before(f.Since)) {
					continue
				}
				out = append(out, a)
				if len(out) > 2*limit {
					out = newest(out, limit)
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			// On a cluster, a pull request sent before the new consumer's
			// interest has reached the server of this connection finds no
			// responder (1 call in 100 on a busy machine): ask again.
			if errors.Is(err, nats.ErrNoResponders) && n == 0 && (unanswered.IsZero() || time.Since(unanswered) < noResponderWait) {
				if unanswered.IsZero() {
					unanswered = time.Now()
				}
				if wait.For(ctx, 20*time.Millisecond) {
					continue
				}
			}
			return out, fmt.Errorf("attempt log: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return newest(out, limit), nil
}

// newest returns the limit newest records of list, by the time their
// attempts started, oldest first. The log's order is close to it but not
// the same: a node publishes the records of its subjects in batches, so
// one subject's records of the last 20 ms may follow another's that are
// newer, and an attempt is logged when it ends.
func newest(list []Attempt, limit int) []Attempt {
	slices.SortStableFunc(list, func(x, y Attempt) int { return x.Time.Compare(y.Time) })
	if len(list) > limit {
		list = append(list[:0], list[len(list)-limit:]...)
	}
	return list
}
