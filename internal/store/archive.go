package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Each archive is a stream of its own, BP_ARCHIVE_<id>: JetStream then
// counts its events and bytes (DescribeArchive's EventCount and SizeBytes)
// and enforces its retention (MaxAge), and deleting the archive deletes
// the stream. Events are stored as their envelope, on the subject
// bp.arc.<id>.<hour>, where hour is the event's time (its "time" field)
// in hours since the epoch, seven digits: a replay lists the hours of its
// window and reads each hour's subject, so it never reads the whole
// archive, and the server's per-subject index costs one entry per hour
// (8,760 a year), not one per event.
const (
	archiveStreamPrefix = "BP_ARCHIVE_"
	archiveSubject      = "bp.arc"
	// hourDigits is the width of the hour token; the hours are clamped
	// to [0, maxHour].
	hourDigits = 7
	maxHour    = 9_999_999
)

// ArchiveHour returns the hour bucket of an event time.
func ArchiveHour(t time.Time) int64 {
	return min(max(t.Unix()/3600, 0), maxHour)
}

func archiveStream(id string) string { return archiveStreamPrefix + id }

func archiveHourSubject(id string, hour int64) string {
	h := strconv.FormatInt(hour, 10)
	return archiveSubject + "." + id + "." + strings.Repeat("0", hourDigits-len(h)) + h
}

// archiveConfig is an archive's stream. The duplicate window covers a
// routing repeated after a crash (the router's ack wait and a restart),
// as for jobs.
func (s *Store) archiveConfig(id string, retention time.Duration) jetstream.StreamConfig {
	dup := dedupeWindow
	if retention > 0 {
		dup = min(dup, retention) // JetStream's rule
	}
	return jetstream.StreamConfig{
		Name:        archiveStream(id),
		Description: "an archive's events, by the hour of their time",
		Subjects:    []string{archiveSubject + "." + id + ".*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  dup,
	}
}

// CreateArchive makes an archive's stream; retention 0 keeps its events
// for ever. Creating one that exists updates its retention.
func (s *Store) CreateArchive(ctx context.Context, id string, retention time.Duration) error {
	if _, err := s.js.CreateOrUpdateStream(ctx, s.archiveConfig(id, retention)); err != nil {
		return fmt.Errorf("archive stream: %w", err)
	}
	return nil
}

// DeleteArchive deletes an archive's stream and every event in it.
// Deleting one that does not exist succeeds.
func (s *Store) DeleteArchive(ctx context.Context, id string) error {
	err := s.js.DeleteStream(ctx, archiveStream(id))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete archive stream: %w", err)
	}
	return nil
}

// ErrNoArchive is returned for an archive whose stream does not exist.
var ErrNoArchive = errors.New("store: the archive's stream does not exist")

// ArchiveStats are an archive's event count and the bytes of those
// events' envelopes.
type ArchiveStats struct {
	Events int64
	Bytes  int64
}

// archiveMsgOverhead is what the file store counts for one archived
// message besides its body: 22 bytes of record header, the subject, 4
// bytes of header length, the headers (the message id's), and an 8-byte
// hash (nats-server's fileStoreMsgSize). TestArchiveSizeBytes checks
// SizeBytes against the events' own sizes, so a change of the record
// format shows at once.
func archiveMsgOverhead(id string) int64 {
	hdr := "NATS/1.0\r\n" + jetstream.MsgIDHeader + ": " + msgID("x") + "\r\n\r\n"
	return int64(22 + len(archiveHourSubject(id, 0)) + 4 + len(hdr) + 8)
}

// archiveStreamOf returns an archive's stream; ErrNoArchive when it does
// not exist.
func (s *Store) archiveStreamOf(ctx context.Context, id string) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, archiveStream(id))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoArchive
	}
	if err != nil {
		return nil, fmt.Errorf("archive stream: %w", err)
	}
	return st, nil
}

// ArchiveStats returns an archive's counts as the stream holds them now.
func (s *Store) ArchiveStats(ctx context.Context, id string) (ArchiveStats, error) {
	st, err := s.archiveStreamOf(ctx, id)
	if err != nil {
		return ArchiveStats{}, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return ArchiveStats{}, fmt.Errorf("archive stream: %w", err)
	}
	n := int64(info.State.Msgs)
	return ArchiveStats{Events: n, Bytes: max(int64(info.State.Bytes)-n*archiveMsgOverhead(id), 0)}, nil
}

// Archived is an event written to an archive.
type Archived struct {
	Archive string // the archive's id
	EventID string
	Time    time.Time // the event's time field
	Data    []byte    // the envelope
}

func (a *Archived) msg() (*nats.Msg, jetstream.PublishOpt) {
	m := nats.NewMsg(archiveHourSubject(a.Archive, ArchiveHour(a.Time)))
	m.Data = a.Data
	// One archived copy per event: routing the event again after a crash
	// writes it again under the same id.
	return m, jetstream.WithMsgID(msgID(a.EventID))
}

// ArchiveMark is where an archive's stream ends now: a replay reads
// events stored up to it, so that events archived while it runs (which
// AWS advises not to rely on either) do not make it run for ever.
func (s *Store) ArchiveMark(ctx context.Context, id string) (uint64, error) {
	st, err := s.archiveStreamOf(ctx, id)
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.LastSeq, nil
}

// ArchiveHours returns the hours in [from, to] that hold events of the
// archive, in order. It costs one entry per hour the archive holds.
func (s *Store) ArchiveHours(ctx context.Context, id string, from, to int64) ([]int64, error) {
	st, err := s.archiveStreamOf(ctx, id)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(archiveSubject+"."+id+".*"))
	if err != nil {
		return nil, fmt.Errorf("archive hours: %w", err)
	}
	var hours []int64
	for subj, n := range info.State.Subjects {
		i := strings.LastIndexByte(subj, '.')
		h, err := strconv.ParseInt(subj[i+1:], 10, 64)
		if err != nil || n == 0 || h < from || h > to {
			continue
		}
		hours = append(hours, h)
	}
	slices.Sort(hours)
	return hours, nil
}

// ReadArchiveHour passes fn the events of one hour of an archive stored
// after sequence after and up to mark, in the order they were archived,
// with their sequences. It stops at fn's first error and returns it.
func (s *Store) ReadArchiveHour(ctx context.Context, id string, hour int64, after, mark uint64, fn func(seq uint64, data []byte) error) error {
	if after >= mark {
		return nil
	}
	subj := archiveHourSubject(id, hour)
	cons, err := s.js.OrderedConsumer(ctx, archiveStream(id), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ErrNoArchive
	}
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read archive: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if md.Sequence.Stream > mark {
			return nil
		}
		if err := fn(md.Sequence.Stream, m.Data()); err != nil {
			return err
		}
		if md.NumPending == 0 || md.Sequence.Stream == mark {
			return nil
		}
	}
}

// ReplayBacklog returns the number of jobs of replayed events waiting on
// the replay lane.
func (s *Store) ReplayBacklog(ctx context.Context) (int, error) {
	st, err := s.js.Stream(ctx, replayStream)
	if err != nil {
		return 0, fmt.Errorf("replay jobs stream: %w", err)
	}
	return int(st.CachedInfo().State.Msgs), nil
}
