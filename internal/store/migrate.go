package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// hdrSent keeps a queue message's original send time when it is copied
// into another store (unix nanoseconds): the copy's own timestamp is the
// time of the copy.
const hdrSent = "Bp-Sent"

// MigrateOptions say how to migrate.
type MigrateOptions struct {
	// Replace removes every stream and bucket bridgeport keeps in the target
	// first (after a migration that failed part of the way); no node may be
	// using the target.
	Replace bool
	// Progress, when set, hears of each part as it starts.
	Progress func(string)
}

// MigrateStats counts what Migrate copied.
type MigrateStats struct {
	Records       int // configuration: buses, rules, targets, connections, destinations, queues, IAM
	Events        int // events not yet routed
	Jobs          int // deliveries due
	Delayed       int // deliveries waiting for a retry or a deferral
	QueueMessages int
	Attempts      int // records of the delivery attempt log
	Aside         int // events set aside by the router
	Parked        int // deliveries parked while their destination failed
	Replayed      int // deliveries of replayed events queued
	Archived      int // events in archives
}

// Migrate copies the durable state of from (a store nothing else uses: a
// stopped node's embedded engine) into to, a store that holds no
// bridgeport data yet (a new cluster): the configuration records, the
// events not yet routed, the deliveries due and delayed, the queues'
// messages and the attempt log. What is transient is left behind: receipt
// handles (messages in flight become visible again), node heartbeats, rate
// windows and the outcomes of redrive runs. Every message keeps its subject, headers (its
// deduplication id among them) and body. Events above the router's
// acknowledgement floor are copied, so the few the router had handled out
// of order just before the node stopped are routed again: at least once,
// as after a crash.
func Migrate(ctx context.Context, from, to *Store, o MigrateOptions) (MigrateStats, error) {
	var st MigrateStats
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	if o.Replace {
		progress("removing what the target held")
		if err := to.removeAll(ctx); err != nil {
			return st, err
		}
	}
	if err := to.empty(ctx); err != nil {
		return st, err
	}
	progress("copying the configuration")
	keys, err := from.keysOf(ctx, from.kv, "")
	if err != nil {
		return st, fmt.Errorf("list configuration: %w", err)
	}
	for _, key := range keys {
		e, err := from.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("read %s: %w", key, err)
		}
		value := e.Value()
		if key == settingsKey {
			// The cluster's settings come along (its nodes need the old
			// node's secret key), but its replicas are the target's.
			if value, err = withSetting(value, SettingReplicas, strconv.Itoa(to.cfg.Replicas)); err != nil {
				return st, err
			}
		}
		if _, err := to.kv.Put(ctx, key, value); err != nil {
			return st, fmt.Errorf("write %s: %w", key, err)
		}
		st.Records++
	}
	// Events the router has acknowledged have their jobs already; the
	// rest (including any it held unacknowledged) are routed again.
	first, err := from.unroutedFrom(ctx)
	if err != nil {
		return st, err
	}
	// A batch is one message of several events: count the events.
	unrouted := 0
	countEvents := func(m *nats.Msg, _ time.Time) {
		n, err := strconv.Atoi(m.Header.Get(hdrBatch))
		if err != nil || n < 1 {
			n = 1
		}
		unrouted += n
	}
	// A job batch is one message of several jobs: count the jobs.
	batched, batchedJobs := 0, 0
	countJobs := func(m *nats.Msg, _ time.Time) {
		batchedJobs += batchJobs(m.Subject)
	}
	parts := []struct {
		what   string
		stream string
		first  uint64
		n      *int
		edit   func(*nats.Msg, time.Time)
	}{
		{"events not yet routed", eventsStream, first, &st.Events, countEvents},
		{"deliveries due", jobsStream, 1, &st.Jobs, nil},
		{"deliveries due in batches", batchStream, 1, &batched, countJobs},
		{"deliveries delayed", delayStream, 1, &st.Delayed, nil},
		{"queue messages", queuesStream, 1, &st.QueueMessages, func(m *nats.Msg, stored time.Time) {
			if m.Header.Get(hdrSent) == "" {
				m.Header.Set(hdrSent, strconv.FormatInt(stored.UnixNano(), 10))
			}
		}},
		{"attempt log", attemptsStream, 1, &st.Attempts, nil},
		{"events set aside", asideStream, 1, &st.Aside, nil},
		{"deliveries parked", parkStream, 1, &st.Parked, nil},
		{"deliveries of replayed events", replayStream, 1, &st.Replayed, nil},
	}
	// Each queue's consumer is made when the queue is created; the
	// queues come over as records, so their consumers are made here.
	progress("creating the queues' consumers")
	queues, err := from.js.Stream(ctx, queuesStream)
	if err != nil {
		return st, fmt.Errorf("queues: %w", err)
	}
	lister := queues.ListConsumers(ctx)
	for ci := range lister.Info() {
		cfg := ci.Config
		cfg.Replicas = to.cfg.Replicas
		if _, err := to.durable(ctx, queuesStream, cfg); err != nil {
			return st, fmt.Errorf("queue consumer %s: %w", ci.Name, err)
		}
	}
	if err := lister.Err(); err != nil {
		return st, fmt.Errorf("queues: %w", err)
	}
	for _, p := range parts {
		progress("copying " + p.what)
		n, err := copyStream(ctx, from, to, p.stream, p.first, p.edit)
		*p.n = n
		if p.stream == eventsStream {
			st.Events = unrouted
		}
		if p.stream == batchStream {
			st.Jobs += batchedJobs
		}
		if err != nil {
			return st, fmt.Errorf("%s: %w", p.what, err)
		}
	}
	// Each archive is a stream of its own, made with the target's
	// replicas and the archive's retention.
	names := from.js.StreamNames(ctx, jetstream.WithStreamListSubject(archiveSubject+".>"))
	for name := range names.Name() {
		id, ok := strings.CutPrefix(name, archiveStreamPrefix)
		if !ok {
			continue
		}
		src, err := from.js.Stream(ctx, name)
		if err != nil {
			return st, fmt.Errorf("archive %s: %w", id, err)
		}
		progress("copying archive " + id)
		if err := to.CreateArchive(ctx, id, src.CachedInfo().Config.MaxAge); err != nil {
			return st, err
		}
		n, err := copyStream(ctx, from, to, name, 1, nil)
		st.Archived += n
		if err != nil {
			return st, fmt.Errorf("archive %s: %w", id, err)
		}
	}
	if err := names.Err(); err != nil {
		return st, fmt.Errorf("list archives: %w", err)
	}
	return st, nil
}

// empty fails unless the store holds no configuration and no events, jobs
// or queue messages: a migration goes into a new cluster, once.
func (s *Store) empty(ctx context.Context) error {
	n, err := s.countKeys(ctx, s.kv)
	if err != nil {
		return fmt.Errorf("list configuration: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("the target already holds bridgeport configuration (%d records): migrate into a NATS cluster bridgeport has not used, or, after a migration that failed, run it again with --replace", n)
	}
	for _, name := range []string{eventsStream, jobsStream, batchStream, delayStream, queuesStream, parkStream} {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if info.State.Msgs > 0 {
			return fmt.Errorf("the target's stream %s already holds %d messages: migrate into a NATS cluster bridgeport has not used, or, after a migration that failed, run it again with --replace", name, info.State.Msgs)
		}
	}
	return nil
}

// publishRetrying writes m, trying three times.
func (s *Store) publishRetrying(ctx context.Context, m *nats.Msg) error {
	var err error
	for range 3 {
		if _, err = s.js.PublishMsg(ctx, m); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("write: %w", err)
}

// copyWindow is how many copies are published before their
// acknowledgements are awaited.
const copyWindow = 512

// copyStream publishes the messages of stream in from, from sequence first
// on, to the same subjects in to, with their headers (edit may add some)
// and bodies, and returns how many it copied. It reads each message by
// sequence (a get of the next stored one: scan), which works on work-queue
// streams, where no second consumer may read.
func copyStream(ctx context.Context, from, to *Store, stream string, first uint64, edit func(*nats.Msg, time.Time)) (int, error) {
	src, err := from.js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	n := 0
	var pending []jetstream.PubAckFuture
	flush := func() error {
		for _, f := range pending {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					// Another message of the source had the same id (a FIFO
					// deduplication id reused after its window): keep both.
					m := f.Msg()
					m.Header.Del(nats.MsgIdHdr)
					if err := to.publishRetrying(ctx, m); err != nil {
						return err
					}
				}
			case <-f.Err():
				// No acknowledgement: write it again under the same id, so
				// that a first write that did land is not stored twice.
				if err := to.publishRetrying(ctx, f.Msg()); err != nil {
					return err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		pending = pending[:0]
		return nil
	}
	var werr error
	err = scan(ctx, src, ">", max(first, 1), func(raw *jetstream.RawStreamMsg) bool {
		out := copyOf(raw)
		if edit != nil {
			edit(out, raw.Time)
		}
		f, err := to.js.PublishMsgAsync(out)
		if err != nil {
			werr = fmt.Errorf("write: %w", err)
			return false
		}
		n++
		if pending = append(pending, f); len(pending) == copyWindow {
			werr = flush()
		}
		return werr == nil
	})
	if err != nil {
		return n, err
	}
	if werr != nil {
		return n, werr
	}
	return n, flush()
}

// removeAll deletes every stream and bucket bridgeport keeps, then creates
// them again, empty.
func (s *Store) removeAll(ctx context.Context) error {
	names := s.js.StreamNames(ctx, jetstream.WithStreamListSubject(archiveSubject+".>"))
	var archives []string
	for name := range names.Name() {
		archives = append(archives, name)
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("list archives: %w", err)
	}
	for _, name := range append(archives, replayStream) {
		if err := s.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	for _, name := range []string{eventsStream, jobsStream, batchStream, delayStream, queuesStream, attemptsStream, asideStream, parkStream,
		"KV_" + configBucket, "KV_" + healthBucket, "KV_" + receiptsBucket, "KV_" + nodesBucket, "KV_" + ratesBucket, "KV_" + redrivesBucket} {
		if err := s.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return s.ensureAll(ctx)
}
