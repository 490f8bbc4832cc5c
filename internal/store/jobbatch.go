package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bridgeport/internal/wait"
)

// Jobs in batches. The router queues the jobs of a routed message that it
// does not start at once (Worker.Direct) as a few messages of up to
// maxBatchJobs jobs each, not one message a job: one write, one fetch and
// one acknowledgement then serve many deliveries, where the engine's work
// for each message cost as much as a delivery's HTTP request. A batch's
// jobs run at once, each to its own durable outcome (ConsumeJobBatches);
// the message is acknowledged when they all have one.
//
// Batches have a stream of their own, with its own consumer, so that a node
// of an earlier version, which reads one job a message, never sees one (it
// would terminate what it cannot read): they wait for a node that reads
// them. Jobs queued again one by one (a retry due, a deferral, a job whose
// attempt did not end) keep to the jobs stream, which every version reads.
//
// A batch's subject ends in the number of its jobs (bp.jobbatch.12), so
// that the stream's subject counts give the jobs queued without reading a
// message (PipelineDepths).
const (
	batchStream   = "BP_JOB_BATCHES"
	batchSubject  = "bp.jobbatch"
	batchConsumer = "deliver-batches"

	// batchFormat is the first byte of a batch's body. A node that reads a
	// later one leaves the batch for a node that can (ConsumeJobBatches).
	batchFormat byte = 1

	// maxBatchJobs and maxBatchBytes bound a batch: what a worker holds
	// for one message, and the message's size, well under the engine's
	// limit of 1 MB.
	maxBatchJobs  = 64
	maxBatchBytes = 512 << 10
)

// errBatchFormat is a batch written in a format this version does not read;
// errBatchCorrupt one cut short or corrupt.
var (
	errBatchFormat  = errors.New("job batch of a later format")
	errBatchCorrupt = errors.New("job batch cut short or corrupt")
)

// appendJobBatch appends the encoding of jobs to dst: the format byte; the
// distinct event bodies, each once (the jobs of one event for several
// targets share it); then each job's fields and the index of its body.
func appendJobBatch(dst []byte, jobs []Job) []byte {
	dst = append(dst, batchFormat)
	bodies := make([]int, len(jobs)) // each job's body index
	var distinct [][]byte
	var lastID string
	for i := range jobs {
		j := &jobs[i]
		n := len(distinct)
		if n > 0 && j.EventID == lastID && bytes.Equal(distinct[n-1], j.Event) {
			bodies[i] = n - 1
			continue
		}
		distinct, lastID = append(distinct, j.Event), j.EventID
		bodies[i] = n
	}
	dst = binary.AppendUvarint(dst, uint64(len(distinct)))
	for _, b := range distinct {
		dst = AppendField(dst, b)
	}
	dst = binary.AppendUvarint(dst, uint64(len(jobs)))
	for i := range jobs {
		j := &jobs[i]
		for _, s := range []string{j.EventID, j.Bus, j.RuleArn, j.TargetID, j.Redrive, j.RedriveRun, j.Replay} {
			dst = AppendField(dst, []byte(s))
		}
		dst = binary.AppendVarint(dst, j.Ingested.UnixNano())
		dst = binary.AppendUvarint(dst, uint64(j.Attempt))
		dst = binary.AppendUvarint(dst, uint64(j.Deferrals))
		dst = binary.AppendUvarint(dst, uint64(bodies[i]))
	}
	return dst
}

// decodeJobBatch reads a batch appendJobBatch wrote. The jobs' bodies are
// slices of data.
func decodeJobBatch(data []byte) ([]Job, error) {
	if len(data) == 0 {
		return nil, errBatchCorrupt
	}
	if data[0] != batchFormat {
		if data[0] > batchFormat {
			return nil, errBatchFormat
		}
		return nil, errBatchCorrupt
	}
	b := data[1:]
	uvarint := func() (uint64, bool) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	n, ok := uvarint()
	// Each body takes at least a byte, each job more than ten.
	if !ok || n > uint64(len(b)) {
		return nil, errBatchCorrupt
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		if bodies[i], b, ok = CutField(b); !ok {
			return nil, errBatchCorrupt
		}
	}
	n, ok = uvarint()
	if !ok || n > uint64(len(b))/11 {
		return nil, errBatchCorrupt
	}
	jobs := make([]Job, n)
	for i := range jobs {
		j := &jobs[i]
		for _, s := range []*string{&j.EventID, &j.Bus, &j.RuleArn, &j.TargetID, &j.Redrive, &j.RedriveRun, &j.Replay} {
			var f []byte
			if f, b, ok = CutField(b); !ok {
				return nil, errBatchCorrupt
			}
			*s = string(f)
		}
		ns, k := binary.Varint(b)
		if k <= 0 {
			return nil, errBatchCorrupt
		}
		b = b[k:]
		j.Ingested = time.Unix(0, ns)
		attempt, ok1 := uvarint()
		deferrals, ok2 := uvarint()
		body, ok3 := uvarint()
		if !ok1 || !ok2 || !ok3 || attempt > 1<<30 || deferrals > 1<<30 || body >= uint64(len(bodies)) {
			return nil, errBatchCorrupt
		}
		j.Attempt, j.Deferrals, j.Event = int(attempt), int(deferrals), bodies[body]
	}
	if len(b) != 0 {
		return nil, errBatchCorrupt
	}
	return jobs, nil
}

// batchMsgs returns jobs as batch messages of at most maxBatchJobs jobs
// and about maxBatchBytes each, with their message ids: a hash of the
// jobs' ids (as msgID makes of one id), so that the same jobs queued again
// are one batch, stored once.
func batchMsgs(jobs []Job) ([]*nats.Msg, []string) {
	var msgs []*nats.Msg
	var ids []string
	for len(jobs) > 0 {
		n, size := 0, 0
		for n < len(jobs) && n < maxBatchJobs && (n == 0 || size+len(jobs[n].Event) <= maxBatchBytes) {
			size += len(jobs[n].Event)
			n++
		}
		chunk := jobs[:n]
		jobs = jobs[n:]
		h := sha256.New()
		for i := range chunk {
			h.Write([]byte(chunk[i].ID()))
			h.Write([]byte{0})
		}
		msg := nats.NewMsg(batchSubject + "." + strconv.Itoa(len(chunk)))
		msg.Data = appendJobBatch(make([]byte, 0, size+len(chunk)*160+16), chunk)
		msgs = append(msgs, msg)
		ids = append(ids, base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16]))
	}
	return msgs, ids
}

// batchJobs is the number of jobs of a batch on subject, which ends in it
// (bp.jobbatch.<jobs>).
func batchJobs(subject string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(subject, batchSubject+"."))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// jobsInBatchSubjects sums the jobs of the batches counted by subject.
func jobsInBatchSubjects(subjects map[string]uint64) int {
	total := 0
	for subj, count := range subjects {
		total += batchJobs(subj) * int(count)
	}
	return total
}

// queuedInBatches returns the jobs the batch stream holds, queued or in
// hand.
func (s *Store) queuedInBatches(ctx context.Context) (int, error) {
	st, err := s.js.Stream(ctx, batchStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(batchSubject+".*"))
	if err != nil {
		return 0, err
	}
	return jobsInBatchSubjects(info.State.Subjects), nil
}

// scanBatchJobs hands fn the jobs of every stored batch, in order, until
// fn returns false; a batch that cannot be read is an error.
func (s *Store) scanBatchJobs(ctx context.Context, fn func(Job) bool) error {
	st, err := s.js.Stream(ctx, batchStream)
	if err != nil {
		return fmt.Errorf("job batches: %w", err)
	}
	var bad error
	err = scan(ctx, st, batchSubject+".>", 1, func(m *jetstream.RawStreamMsg) bool {
		jobs, err := decodeJobBatch(m.Data)
		if err != nil {
			bad = fmt.Errorf("read job batch %d: %w", m.Sequence, err)
			return false
		}
		for _, j := range jobs {
			if !fn(j) {
				return false
			}
		}
		return true
	})
	if err == nil {
		err = bad
	}
	return err
}

// batchAckWait is the batch consumer's acknowledgement wait: after a crash
// the batches in hand are offered again when it runs out. A batch in hand
// tells the engine it is still being worked on three times in each.
const batchAckWait = 15 * time.Second

// ConsumeJobBatches runs the jobs of the batches the router queued, with fn,
// until ctx ends; fn has ConsumeJobs' contract, each job's outcome durable
// before it returns nil. It takes batches while fewer than slots jobs are
// in hand, and starts each batch's jobs at once, each in its own
// goroutine: at most slots jobs and one fetch's batches beyond them are in
// hand. While any job of a batch runs, the batch's acknowledgement wait is
// kept from running out. When all have ended, those whose fn failed (the
// store unavailable, or workCtx ended before their call did) are queued
// again one by one, and only they, and the batch is acknowledged. If none
// of its jobs ended, the batch is handed back whole; if queueing again
// fails, it is offered again after a pause, and the jobs that had ended
// run again (at least once, as after a crash).
//
// The batches are fetched, a few at a time as room frees, rather than
// streamed: a stream's consumer that stops taking messages while its jobs
// run misses the engine's heartbeats and is torn down, and the batches it
// had been sent wait out their acknowledgement wait.
func (s *Store) ConsumeJobBatches(ctx, workCtx context.Context, slots int, fn func(context.Context, Job) error) error {
	slots = max(slots, 1)
	ackWait := batchAckWait
	if s.batchAckWait > 0 {
		ackWait = s.batchAckWait
	}
	cons, err := s.durable(ctx, batchStream, jetstream.ConsumerConfig{
		Durable:     batchConsumer,
		Description: "invokes targets: the jobs the router queued in batches",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     ackWait,
		// What a node holds is bounded by its slots; this only bounds
		// what all nodes together hold.
		MaxAckPending: 4096,
	})
	if err != nil {
		return fmt.Errorf("%s consumer: %w", batchConsumer, err)
	}
	var inHand atomic.Int64
	room := make(chan struct{}, 1)
	var held sync.WaitGroup
	perBatch := 8.0 // jobs a batch, on average lately
	take := func(m jetstream.Msg) {
		jobs, err := decodeJobBatch(m.Data())
		if errors.Is(err, errBatchFormat) {
			s.log.Warn("job batch of a later version; left for a node of that version", "error", err)
			_ = m.NakWithDelay(30 * time.Second)
			return
		}
		if err != nil {
			s.log.Error("unreadable job batch", "error", err)
			_ = m.Term()
			return
		}
		perBatch += (float64(len(jobs)) - perBatch) / 8
		held.Add(1)
		inHand.Add(int64(len(jobs)))
		b := &batchInHand{s: s, m: m, jobs: jobs, ended: make([]bool, len(jobs)), every: ackWait / 3}
		b.mu.Lock()
		b.keep = time.AfterFunc(b.every, b.keepAlive)
		b.mu.Unlock()
		b.running.Add(len(jobs))
		for i := range jobs {
			go func() {
				defer b.running.Done()
				err := fn(workCtx, jobs[i])
				if err == nil {
					b.ended[i] = true
				} else if workCtx.Err() == nil {
					s.log.Warn("job", "event_id", jobs[i].EventID, "error", err)
				}
				if inHand.Add(-1) < int64(slots) {
					select {
					case room <- struct{}{}:
					default:
					}
				}
			}()
		}
		go func() {
			defer held.Done()
			b.running.Wait()
			b.settle(workCtx)
		}()
	}
	for ctx.Err() == nil {
		free := int64(slots) - inHand.Load()
		if free <= 0 {
			select {
			case <-room:
			case <-ctx.Done():
			}
			continue
		}
		want := min(max(int(float64(free)/perBatch), 1), 64)
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(batchFetchWait))
		if err != nil {
			s.log.Warn("fetch job batches", "error", err)
			wait.For(ctx, time.Second)
			continue
		}
		for m := range batch.Messages() {
			if ctx.Err() != nil {
				_ = m.Nak() // not started: handed back
				continue
			}
			take(m)
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) {
			s.log.Warn("fetch job batches", "error", err)
			wait.For(ctx, 200*time.Millisecond)
		}
	}
	held.Wait()
	return nil
}

// batchFetchWait bounds a fetch of job batches when there are fewer than
// it asked for: the batches that come are taken as they come.
const batchFetchWait = 2 * time.Second

// batchInHand is a batch whose jobs are running.
type batchInHand struct {
	s       *Store
	m       jetstream.Msg
	jobs    []Job
	ended   []bool // a job's outcome is durable: each written by its own goroutine
	running sync.WaitGroup
	mu      sync.Mutex
	keep    *time.Timer
	every   time.Duration // how often keepAlive runs
	settled bool
}

// keepAlive resets the batch's acknowledgement wait, and again every
// b.every until it is settled.
func (b *batchInHand) keepAlive() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.settled {
		return
	}
	_ = b.m.InProgress()
	b.keep.Reset(b.every)
}

// settle ends the batch once its jobs have ended (see ConsumeJobBatches).
func (b *batchInHand) settle(workCtx context.Context) {
	b.mu.Lock()
	b.settled = true
	b.keep.Stop()
	b.mu.Unlock()
	var again []Job
	for i, ok := range b.ended {
		if !ok {
			again = append(again, b.jobs[i])
		}
	}
	switch {
	case len(again) == 0:
		_ = b.m.Ack()
	case len(again) == len(b.jobs):
		// Nothing ran to an outcome: the batch is offered again whole.
		if workCtx.Err() != nil {
			_ = b.m.Nak()
		} else {
			_ = b.m.NakWithDelay(time.Second)
		}
	default:
		// Queued again even while the node stops: the batch's other jobs
		// were sent.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(workCtx), 10*time.Second)
		defer cancel()
		if err := b.s.AppendJobs(qctx, again); err != nil {
			b.s.log.Warn("jobs of a batch not queued again; the batch is offered again", "jobs", len(again), "error", err)
			_ = b.m.NakWithDelay(time.Second)
			return
		}
		_ = b.m.Ack()
	}
}
