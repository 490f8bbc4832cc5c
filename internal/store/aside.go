package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Events set aside: stored events the router could not route (one that does
// not parse, or whose matching keeps running out of time). Each is moved,
// whole, to a stream of its own, so that it neither blocks the router nor
// is lost; it stays there for asideMaxAge.
const (
	asideStream   = "BP_ASIDE"
	asideSubject  = "bp.aside"
	hdrReason     = "Bp-Reason"
	hdrTries      = "Bp-Tries"
	asideMaxAge   = 14 * 24 * time.Hour
	asideMaxBytes = 1 << 30
)

// maxRouteTries is how many times the router tries an event whose routing
// fails because of the event itself (see Unroutable) before it sets the
// event aside.
const maxRouteTries = 3

// Unroutable is an error of routing that comes from the event rather than
// from the store: the router tries the event again up to maxRouteTries
// times (at once, when Final), then sets it aside.
type Unroutable struct {
	Reason string // for the record: what went wrong, without the event
	Final  bool   // trying again cannot help
	Err    error
}

func (e *Unroutable) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Unroutable) Unwrap() error { return e.Err }

func (s *Store) ensureAside(ctx context.Context) error {
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        asideStream,
		Description: "events set aside: stored, but not routable",
		Subjects:    []string{asideSubject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      asideMaxAge,
		MaxBytes:    asideMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  dedupeWindow,
	})
	if err != nil {
		return fmt.Errorf("aside stream: %w", err)
	}
	return nil
}

// setAside stores the event, the i-th of message m, in the aside stream
// (once, by its place in the events stream) and records it in the attempt
// log, so that `events trace` shows what became of it.
func (s *Store) setAside(ctx context.Context, m jetstream.Msg, i int, ev Event, reason string, tries uint64) error {
	msg := nats.NewMsg(asideSubject + "." + Token(ev.Bus))
	msg.Header.Set(hdrBus, ev.Bus)
	msg.Header.Set(hdrEventID, ev.ID)
	msg.Header.Set(hdrIngested, strconv.FormatInt(ev.Ingested.UnixNano(), 10))
	if ev.Forwarded {
		msg.Header.Set(hdrForwarded, "1")
	}
	if ev.Rule != "" {
		msg.Header.Set(hdrRule, ev.Rule)
	}
	msg.Header.Set(hdrReason, reason)
	msg.Header.Set(hdrTries, strconv.FormatUint(tries, 10))
	msg.Data = ev.Data
	id := "aside-" + ev.ID
	if md, err := m.Metadata(); err == nil {
		id = "aside-" + strconv.FormatUint(md.Sequence.Stream, 10)
		if m.Headers().Get(hdrBatch) != "" {
			id += "-" + strconv.Itoa(i)
		}
	}
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("set event aside: %w", err)
	}
	s.LogAttempt(Attempt{Time: time.Now(), EventID: ev.ID, Bus: ev.Bus, Attempt: int(tries),
		Code: "UNROUTABLE", Message: reason, Outcome: OutcomeSetAside})
	return nil
}

// AsideSummary describes the events of one bus that were set aside.
type AsideSummary struct {
	Count   int
	Last    time.Time // when the latest was set aside
	EventID string    // the latest's id
	Reason  string    // why the latest was
}

// Aside summarizes the events of bus that were set aside and are still
// kept.
func (s *Store) Aside(ctx context.Context, bus string) (AsideSummary, error) {
	subject := asideSubject + "." + Token(bus)
	str, err := s.js.Stream(ctx, asideStream)
	if err != nil {
		return AsideSummary{}, fmt.Errorf("aside stream: %w", err)
	}
	info, err := str.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return AsideSummary{}, fmt.Errorf("aside stream: %w", err)
	}
	sum := AsideSummary{Count: int(info.State.Subjects[subject])}
	if sum.Count == 0 {
		return sum, nil
	}
	last, err := str.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return AsideSummary{}, nil
	}
	if err != nil {
		return sum, fmt.Errorf("aside stream: %w", err)
	}
	sum.Last = last.Time
	sum.EventID = last.Header.Get(hdrEventID)
	sum.Reason = last.Header.Get(hdrReason)
	return sum, nil
}
